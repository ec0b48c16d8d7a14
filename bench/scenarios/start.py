"""Process start: the CPU a new worker (or beat) and a new web process spend loading the package
and building the app, before they take any work. Every deploy, restart and autoscaled process
pays it, and so does each of the test suite's hundred-odd processes.

``BENCH_START_AGAINST=<commit>`` measures that commit's tree too (a temporary git worktree, on
the same venv), process by process in turns with this one: this machine's speed drifts by a
quarter within minutes, so only figures taken in turns compare."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import ROOT, Bench, beside

TITLE = "process start CPU"
RUNS = 15  # new processes of each kind and tree, in turns; the median is shown
# What the Procfile's processes run before they serve: ``celery -A celery_app`` (worker and beat
# alike) imports celery_app; gunicorn loads ``notifier:create_app()``.
KINDS = {
    "worker": "import celery_app",
    "web": "from notifier import create_app; create_app()",
}


def _cpu(code: str, tree: Path, env: dict[str, str]) -> float:
    """Seconds of CPU (user + system) of one ``python -c code`` in ``tree`` (its package is the
    one imported: the current directory comes first on the path)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@contextlib.contextmanager
def _trees() -> Iterator[dict[str, Path]]:
    """This tree, and the one of ``BENCH_START_AGAINST`` if set."""
    against = os.environ.get("BENCH_START_AGAINST")
    if not against:
        yield {"now": ROOT}
        return
    with tempfile.TemporaryDirectory(prefix="notifier-bench-start-") as folder:
        other = Path(folder) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(other), against], check=True)
        try:
            yield {"now": ROOT, against: other}
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)


def run(bench: Bench) -> dict[str, Any]:
    """Each kind started RUNS times in each tree, in turns (a first start of each, which writes
    the bytecode, left out), on the bench's settings."""
    env = {k: v for k, v in bench.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with _trees() as trees:
        for tree in trees.values():
            for code in KINDS.values():
                _cpu(code, tree, env)
        runs: dict[str, dict[str, list[float]]] = {n: {k: [] for k in KINDS} for n in trees}
        for _ in range(RUNS):
            for name, tree in trees.items():
                for kind, code in KINDS.items():
                    runs[name][kind].append(_cpu(code, tree, env))
    return {"start": {"runs": runs}}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The median CPU of each kind's start, with its quartiles (each tree measured), beside the
    baseline's."""
    rows = []
    for name, kinds in r["runs"].items():
        tree = "" if name == "now" else f" ({name}, in turns)"
        for kind, label in (("worker", "worker or beat (import celery_app)"),
                            ("web", "web (create_app: routes, console)")):  # fmt: skip
            low, median, high = statistics.quantiles(kinds[kind], n=4)
            rows.append((f"{label}{tree}, median of {len(kinds[kind])}",
                         f"{median:.2f} s  (quartiles {low:.2f}-{high:.2f})",
                         kind if name == "now" else "-"))  # fmt: skip
    return beside(rows, before)
