"""A worker and beat load the app without garbage collection, and leave what their start made out
of it once they are up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness.processes import ROOT, python_output


@pytest.mark.parametrize("signal", ["worker_ready", "beat_init"])
def test_what_the_start_made_is_frozen_when_the_process_is_up(signal: str) -> None:
    code = (
        "import gc\n"
        "from celery import signals\n"
        "import notifier.celery_ext\n"
        "before = gc.get_freeze_count()\n"
        f"signals.{signal}.send(sender=None)\n"
        "print(before, gc.get_freeze_count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, after = map(int, done.stdout.split())
    assert before == 0
    assert after > 10_000  # the modules and their objects: most of the heap


def test_the_app_loads_without_garbage_collection_and_collects_once_loaded(
    tmp_path: Path,
) -> None:
    """``celery -A celery_app`` imports the package and builds the app with the collector off
    (it walked a heap that only grew), and turns it back on after."""
    code = (
        "import gc\n"
        "import notifier\n"
        "build, seen = notifier.create_app, []\n"
        "notifier.create_app = lambda **kw: seen.append(gc.isenabled()) or build(**kw)\n"
        "import celery_app\n"
        "print(*seen, gc.isenabled())\n"
    )
    assert python_output(code, _unreachable(tmp_path)).split() == ["False", "True"]


def test_the_worker_and_beat_build_the_app_without_the_api_or_the_console(
    tmp_path: Path,
) -> None:
    """They serve no HTTP: ``celery_app`` leaves out the routes and what only they load (the
    console's login decoy hash alone was a tenth of a second of CPU a process)."""
    code = (
        "import sys\n"
        "import celery_app\n"
        "loaded = [m for m in sys.modules if m.startswith(('notifier.api', 'notifier.console'))]\n"
        "rules = [r.rule for r in celery_app.flask_app.url_map.iter_rules()]\n"
        "print(len(loaded), *rules)\n"
    )
    assert python_output(code, _unreachable(tmp_path)).split() == ["0", "/static/<path:filename>"]


def _unreachable(state: Path) -> dict[str, object]:
    """Settings that build the app, on a Redis nothing listens on (none is asked)."""
    return {
        "env": "testing",
        "redis_url": "redis://127.0.0.1:9/0",
        "api_keys": "[]",
        "state_dir": state,
    }
