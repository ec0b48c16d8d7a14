"""The web's master loads the app without garbage collection, and leaves what loading made out of
it before it forks."""

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
        "before = gc.get_freeze_count(), gc.isenabled()\n"
        "conf.when_ready(None)\n"
        "print(*before, gc.get_freeze_count(), gc.isenabled())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, collecting, after, collects = done.stdout.split()
    assert (before, collecting) == ("0", "False")
    assert int(after) > 10_000 and collects == "True"
