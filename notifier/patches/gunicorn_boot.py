"""A stop that reaches a gunicorn worker as it boots ends it, instead of being lost.

Why: between the fork and ``Worker.init_signals`` (after ``post_fork`` and gevent's set-up) a
worker still has the master's handlers, which queue the signal in the master's queue: the
child's copy, which no one reads. A web stopped as a worker boots (a deploy, a test that stops
the web it just started) waited ``graceful_timeout`` (20 s) for that worker, which booted on and
served. Seen: a web stopped as its second worker booted took 21 s.

- Touches: nothing of gunicorn's code; relies on ``gunicorn.arbiter.Arbiter.spawn_worker``
  calling ``post_fork`` before ``Worker.init_process``, on ``Arbiter.signal`` (the handler the
  worker inherits) only queueing, on ``Worker.init_signals`` replacing the handlers installed
  here, and on ``Worker.handle_exit`` and ``GeventWorker.run``: a worker whose ``alive`` is
  false leaves its loop and exits as after a TERM.
- Checked with: gunicorn 27.0.1.
- Upstream: https://github.com/benoitc/gunicorn/issues/1910 (the same race, closed in 2018; the
  code is unchanged in 27.0.1).
- Canary: ``tests/unit/test_patches.py``: the sources it relies on, as checked;
  ``tests/unit/test_gunicorn_conf.py``: a worker sent TERM as ``post_fork`` begins exits and
  another serves (without this it served on).

The master holds the stops back across each fork (blocked from ``pre_fork`` until the fork
returns in the master); the worker inherits them held, puts its own handler in at
``post_fork``, then lets them through: one sent meanwhile is delivered then, to that handler.
"""

from __future__ import annotations

import os
import signal
from typing import Any

STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def _let_stops_through() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)


def in_the_master() -> None:
    """Once, in the master (``on_starting``): after each fork the master lets the stops that
    ``hold_stops`` held back through again."""
    os.register_at_fork(after_in_parent=_let_stops_through)


def hold_stops() -> None:
    """In the master, just before a worker's fork (``pre_fork``): stops wait."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)


def stop_once_booted(worker: Any) -> None:
    """In the worker (``post_fork``): until gunicorn's own handlers replace it, a stop tells
    ``worker`` it is not to run (it starts its loop, sees that, and exits); then the stops held
    since the fork come through, to this handler."""

    def not_to_run(sig: int, frame: object) -> None:
        worker.alive = False

    for stop in STOPS:
        signal.signal(stop, not_to_run)
    _let_stops_through()
