"""The web's master loads the app without garbage collection, and leaves what loading made out of
it before it forks; a web stops without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from notifier.embedded import free_port
from tests.support.harness.clients import api_clients
from tests.support.harness.processes import BIN, ROOT, Process, notifier_env, start_web, web_up
from tests.support.harness.wait import wait_for
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


def web_settings(redis_server: RedisServer) -> dict[str, str]:
    settings = {"env": "testing", "redis_url": redis_server.url(2), "api_keys": KEYS,
                "mail_provider": "console", "sms_providers": "console"}  # fmt: skip
    return notifier_env(settings)


def test_a_web_stopped_ends_its_output_without_a_traceback(redis_server: RedisServer) -> None:
    # gevent/gevent#2148: each gevent process freed its log handlers after gevent's modules, and
    # printed "Exception ignored in: <function _removeHandlerRef ...>" with a traceback
    # (notifier/patches/logging_teardown.py).
    web, _ = start_web({**web_settings(redis_server), "WEB_CONCURRENCY": "2"})
    assert web.stop() == 0
    output = web.output()
    assert output.count("Worker exiting") == 2 and "Shutting down: Master" in output, output
    assert "Traceback" not in output and "Exception ignored" not in output, output
    # No control socket at gunicorn's one path for every web of the user (gunicornc's).
    assert "Control socket" not in output, output


# Our settings, and a first worker that is sent SIGTERM as post_fork begins: after the fork,
# before our handler and gunicorn's are in (a stop that reaches a worker as it boots).
STOPPED_AS_IT_BOOTS = """
import os, signal
from notifier.gunicorn_conf import *  # noqa: F403
from notifier import gunicorn_conf as ours

def post_fork(server, worker):
    if not os.path.exists({flag!r}):
        open({flag!r}, "w").write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGTERM)
    ours.post_fork(server, worker)
"""


def test_a_worker_stopped_as_it_boots_exits_and_is_replaced(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Before the mend the worker ignored it (the master's handler, inherited, queued it in the
    # master's queue) and served on: a stop then waited graceful_timeout for it.
    flag, conf = tmp_path / "stopped", tmp_path / "gunicorn_conf.py"
    conf.write_text(STOPPED_AS_IT_BOOTS.format(flag=str(flag)))
    port = free_port()
    web = Process(
        "web",
        [str(BIN / "gunicorn"), "notifier:create_app()", "-c", str(conf),
         "--bind", f"127.0.0.1:{port}"],
        {**web_settings(redis_server), "WEB_CONCURRENCY": "1"},
    )  # fmt: skip
    try:
        pid = wait_for(
            lambda: flag.exists() and flag.read_text(), what="the first worker to be sent SIGTERM"
        )
        web.expect(f"Worker exiting (pid: {pid})")
        web_up(web, f"http://127.0.0.1:{port}")  # the worker that replaced it serves
    finally:
        assert web.stop() == 0
