"""The Procfile's processes as a deploy starts them: from a fresh copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.harness.processes import BIN, ROOT, Process


def fresh_copy(dest: Path) -> Path:
    """Copy the files git would commit (tracked, or new and not ignored) into ``dest``.

    Nothing a developer's runs left behind (``.notifier/``, ``outbox/``, caches) comes along,
    as on a fresh clone or a new container.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def tree(folder: Path) -> set[str]:
    """Every path below ``folder``, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def procfile(folder: Path) -> dict[str, str]:
    """The Procfile's processes by name."""
    lines = (folder / "Procfile").read_text().splitlines()
    return dict(
        (name.strip(), command.strip())
        for name, _, command in (line.partition(":") for line in lines if line.strip())
    )


def start(name: str, folder: Path, env: dict[str, str]) -> Process:
    """Run the Procfile's ``name`` in ``folder`` with this test run's interpreter.

    The copy's own modules come first on the path, and no bytecode is written, so the test
    can tell that the process wrote nothing into its working directory.
    """
    env = {
        **env,
        "PATH": os.pathsep.join([str(BIN), env.get("PATH", "")]),
        "PYTHONPATH": str(folder),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return Process(name, ["/bin/sh", "-c", f"exec {procfile(folder)[name]}"], env, cwd=folder)
