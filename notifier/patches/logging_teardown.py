"""logging's list of handlers, emptied as a web process exits, after every handler is flushed and
closed: no handler freed later, in the interpreter's teardown, runs logging's callback on a lock
whose gevent half is already torn down.

Why: every gunicorn web process (the master and each gevent worker) ended its output with
``Exception ignored in: <function _removeHandlerRef>`` and a traceback (``TypeError: 'NoneType'
object is not callable`` in gevent's ``get_ident``), at every stop and deploy. The handlers are
in the heap the master freezes before it forks (``gc.freeze``, ``notifier/gunicorn_conf.py``),
so they are freed only in the teardown, after gevent's modules; each one freed calls
``logging._removeHandlerRef``, which takes logging's lock, a gevent one in these processes.
Unfreezing the heap at exit instead cost 1.3 s of CPU a web's stop (its last collection walks
all of it again).

- Touches: ``logging._handlerList`` (the weak references to every handler), emptied after
  ``logging.shutdown()``; ``logging._removeHandlerRef`` returns at once when it is empty, and the
  ``logging.shutdown()`` the interpreter runs at exit finds nothing more to do.
- Checked with: Python 3.11.7 (3.12's and 3.13's ``_removeHandlerRef`` return on an empty list
  too), gevent 26.9.0, gunicorn 27.0.1.
- Upstream: https://github.com/gevent/gevent/issues/2148 (open: the same traceback at a gunicorn
  gevent worker's stop).
- Canary: ``tests/unit/test_gunicorn_conf.py``: a real web stopped prints no traceback.
"""

from __future__ import annotations

import logging


def let_handlers_go() -> None:
    """Flush and close every handler (what ``logging.shutdown`` does at exit), then forget them:
    the last thing logging does in the process. A record logged after it is still written by a
    stream handler."""
    logging.shutdown()
    logging._handlerList.clear()  # type: ignore[attr-defined]
