"""The web's master leaves what loading the app made out of garbage collection before it forks."""

from __future__ import annotations

import subprocess
import sys

from tests.support.harness.processes import ROOT


def test_the_master_freezes_the_loaded_app_before_the_workers_fork() -> None:
    # In a process of its own: the config patches the standard library for gevent as it loads.
    code = (
        "import gc\n"
        "import notifier.gunicorn_conf as conf\n"
        "import notifier.api\n"
        "before = gc.get_freeze_count()\n"
        "conf.when_ready(None)\n"
        "print(before, gc.get_freeze_count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, after = map(int, done.stdout.split())
    assert before == 0
    assert after > 10_000
