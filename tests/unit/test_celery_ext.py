"""A worker and beat leave what their start made out of garbage collection once they are up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.harness.processes import ROOT


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
