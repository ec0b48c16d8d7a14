"""The tests share helpers through tests/support/ only: no test module or conftest imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def package_of(path: Path) -> str:
    """The dotted name of the package a file under the repository root is in."""
    return ".".join(path.parent.relative_to(ROOT).parts)


def imported(source: str, package: str) -> list[tuple[int, str]]:
    """Each name ``source`` imports, relative ones resolved inside ``package``, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = ".".join(part for part in (base, node.module) if part)
            # `from tests.unit import test_mail` names the module in the alias.
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def shares_a_test_module(name: str) -> bool:
    """Whether an imported name reaches into tests/ anywhere but tests/support/."""
    return name.startswith("tests.") and not name.startswith("tests.support.")


def test_modules_import_helpers_from_support_only() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, name in imported(path.read_text(), package_of(path))
        if shares_a_test_module(name)
    ]
    assert offending == []


@pytest.mark.parametrize(
    ("source", "wrong"),
    [
        ("from tests.unit.api.test_mail import MAIL", True),
        ("from tests.integration.conftest import Stack", True),
        ("from tests.conftest import auth", True),
        ("import tests.integration.test_mail_delivery", True),
        ("from tests.unit import test_config", True),
        ("from .test_smtp import mail", True),
        ("from ..conftest import auth", True),
        ("from tests.support.harness.api import MAIL", False),
        ("from tests.support.harness import wait", False),
        ("from ...support.harness.mail import mail", False),
        ("from notifier.lanes import LANES", False),
    ],
)
def test_the_check_sees_every_way_to_import_a_test_module(source: str, wrong: bool) -> None:
    names = [name for _, name in imported(source, "tests.unit.providers")]
    assert any(shares_a_test_module(name) for name in names) is wrong
