"""The web's master loads the app without garbage collection, and leaves what loading made out of
it before it forks; a web stops without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.harness.clients import api_clients
from tests.support.harness.processes import ROOT, notifier_env, start_web
from tests.support.peers.redis_server import RedisServer

KEYS = json.dumps([c.model_dump(mode="json") for c in api_clients()])


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


def test_a_web_stopped_ends_its_output_without_a_traceback(redis_server: RedisServer) -> None:
    # gevent/gevent#2148: each gevent process freed its log handlers after gevent's modules, and
    # printed "Exception ignored in: <function _removeHandlerRef ...>" with a traceback
    # (notifier/patches/logging_teardown.py).
    settings = {"env": "testing", "redis_url": redis_server.url(2), "api_keys": KEYS,
                "mail_provider": "console", "sms_providers": "console"}  # fmt: skip
    web, _ = start_web({**notifier_env(settings), "WEB_CONCURRENCY": "2"})
    assert web.stop() == 0
    output = web.output()
    assert output.count("Worker exiting") == 2 and "Shutting down: Master" in output, output
    assert "Traceback" not in output and "Exception ignored" not in output, output
    # No control socket at gunicorn's one path for every web of the user (gunicornc's).
    assert "Control socket" not in output, output
