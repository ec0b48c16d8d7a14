"""Gunicorn's settings for the ``web`` process.

``gunicorn.conf.py`` at the repository root (read from the working directory) loads this
module, and ``notifier run`` passes it explicitly, so the web process is the same wherever
it starts.
"""

import os
import tempfile
from typing import Any

# prometheus_client's multiprocess mode, so /metrics counts every worker process: the folder
# must be set before the app (and prometheus_client) is loaded, and start empty.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="notifier-metrics-"))

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread: a slow client or a slow Redis holds one thread, not a whole process. Two threads:
# the work is CPU-bound Python, and more threads only fight over the GIL (measured: 8 threads
# answered half as many requests a second as 2; see bench/README.md).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# The app logs each request itself, as JSON with its request id.
accesslog = None
# Load the app once in the master: a bad setting stops start-up with its one line, instead
# of every worker failing to boot in turn.
preload_app = True


def on_starting(server: Any) -> None:
    for stale in os.scandir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
        if stale.name.endswith(".db"):
            os.unlink(stale.path)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
