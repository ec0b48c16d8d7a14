"""Gunicorn's settings for the ``web`` process.

``gunicorn.conf.py`` at the repository root (read from the working directory) loads this
module, and ``notifier run`` passes it explicitly, so the web process is the same wherever
it starts.
"""

# No garbage collection until the app is loaded (``when_ready``): loading makes most of the
# heap and frees little of it, and the collections its allocations set off walked it again and
# again (0.06 to 0.15 s of the 1.1 s of CPU loading the app takes).
import gc

gc.disable()

# Patched before anything else is imported: the app is loaded here in the master
# (preload_app), and a library that took ssl's classes before the patch (botocore makes its TLS
# context when a client is built) would recurse without end mixing them with the patched ones
# (RecursionError in ssl.SSLContext.options). The gevent worker patches again after the fork,
# which changes nothing then.
import warnings  # noqa: E402

# gunicorn itself imported ssl before reading this file (for its own TLS, not used here).
warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported")

from gevent import monkey  # type: ignore[import-untyped]  # noqa: E402

monkey.patch_all()

import os  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

# prometheus_client's multiprocess mode, so /metrics counts every worker process: the folder
# must be set before the app (and prometheus_client) is loaded, and start empty.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="notifier-metrics-"))

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent: each connection is a greenlet, so a client that sends its request slowly (or not at
# all) and a Redis that hangs hold a few kilobytes each, never the threads every other request
# needs; with gthread, four half-sent headers took the whole web down. The work itself is
# CPU-bound Python, so one process a core still sets the throughput (see bench/README.md).
worker_class = "gevent"
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = 30
graceful_timeout = 20
# Also the deadline for a whole request header (gunicorn's gevent worker reads each request
# line and header under it): a slow client is cut off after this, however it trickles.
keepalive = 5
# The app logs each request itself, as JSON with its request id.
accesslog = None
# Load the app once in the master: a bad setting stops start-up with its one line, instead
# of every worker failing to boot in turn.
preload_app = True
# No control socket (gunicorn 25.1+ opens one for its `gunicornc` at a fixed path in $HOME or
# $XDG_RUNTIME_DIR, by default): every web on a machine took that one path over in turn, and
# wrote outside the working directory. The Procfile's process is managed by signals.
control_socket_disable = True


def on_starting(server: Any) -> None:
    from notifier.patches.gunicorn_boot import in_the_master

    in_the_master()
    for stale in os.scandir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
        if stale.name.endswith(".db"):
            os.unlink(stale.path)


def when_ready(server: Any) -> None:
    from notifier.schemas import printable_rules

    # The app is loaded (preload_app): worked out once here, the workers inherit it, where each
    # would work it out on its first request with a reference.
    printable_rules()
    # Before the workers fork (gc.freeze's own use): their garbage collections leave out what
    # they inherit, so they neither copy its pages by writing its counts nor walk it, which
    # took each worker 0.3 s of CPU in the last collection alone, as it ended.
    gc.freeze()
    gc.enable()


def pre_fork(server: Any, worker: Any) -> None:
    from notifier.patches.gunicorn_boot import hold_stops

    hold_stops()  # until the fork returns here, and the worker has its handler (post_fork)


def post_fork(server: Any, worker: Any) -> None:
    from notifier import tracing
    from notifier.api.problems import server_refusal
    from notifier.patches.gunicorn_boot import stop_once_booted
    from notifier.patches.gunicorn_errors import answer_refusals_with

    # A stop that reaches the worker before gunicorn's own handlers are in ends it.
    stop_once_booted(worker)

    # What gunicorn refuses before the app sees it is answered as problem+json too.
    answer_refusals_with(server_refusal)
    # Traces (when OTEL_* asks for them) start in each worker, after the fork: the exporter's
    # thread and connections belong to the process that sends. gevent is patched by now.
    tracing.start(worker.app.wsgi(), "web")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    from notifier.patches.logging_teardown import let_handlers_go

    let_handlers_go()  # after the worker's last line ("Worker exiting")


def on_exit(server: Any) -> None:
    from notifier.patches.logging_teardown import let_handlers_go

    let_handlers_go()  # after the master's last line ("Shutting down")
