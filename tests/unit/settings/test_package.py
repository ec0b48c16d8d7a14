"""The settings belong to the package: it never imports the root ``config`` module, which only
re-exports them under the contract's name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import config
import notifier.settings

PACKAGE = Path(notifier.settings.__file__).resolve().parents[1]


def test_the_package_never_imports_the_root_config_module() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [] if node.level else [node.module or ""]
            )  # fmt: skip
            if any(name == "config" or name.startswith("config.") for name in names):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert upward == []


def test_config_is_the_packages_settings_under_the_contracts_name() -> None:
    for name in config.__all__:
        assert getattr(config, name) is getattr(notifier.settings, name)
    assert set(notifier.settings.__all__) <= set(config.__all__)


def test_the_package_loads_no_library_that_takes_ssls_classes() -> None:
    """The web's gunicorn config imports the package, then patches ssl for gevent: a library
    loaded before that keeps the unpatched SSLContext, and every HTTPS call of the web (an SNS
    certificate's fetch) recurses without end in its minimum_version setter."""
    code = (
        "import sys, notifier, notifier.settings\n"
        "print(' '.join(m for m in ('urllib3', 'requests', 'botocore') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""
