"""Gunicorn's settings for the ``web`` process.

``gunicorn.conf.py`` at the repository root (read from the working directory) loads this
module, and ``notifier run`` passes it explicitly, so the web process is the same wherever
it starts.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread: a slow client or a slow Redis holds one thread, not a whole process.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Load the app once in the master: a bad setting stops start-up with its one line, instead
# of every worker failing to boot in turn.
preload_app = True
