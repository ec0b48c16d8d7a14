"""Cut off a task that runs past its time limit, in a pool that has no time limits of its own.

Celery's ``threads`` pool cannot stop a running task. Every socket we open has a timeout, so
no single read or write blocks for long, but a peer that trickles a byte at a time keeps each
one short and the whole send endless. The watchdog raises :class:`TimeLimitExceeded` in the
overrunning thread (``PyThreadState_SetAsyncExc``): it arrives as soon as the thread runs Python
code again, which its socket timeouts guarantee. The task then fails its attempt like any other
unexpected error, and its connection is thrown away, not reused.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)


class TimeLimitExceeded(Exception):
    """Raised inside a task that ran past its time limit; retrying may help."""


def _raise_in(ident: int, exception: type[BaseException] | None) -> None:
    # None clears an exception set earlier that the thread has not raised yet.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exception) if exception else None
    )


class Watchdog:
    """Watch the deadlines of running tasks from one daemon thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self._interval = interval
        self._deadlines: dict[int, float] = {}
        self._fired: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Run the body with a deadline ``seconds`` from now."""
        ident = threading.get_ident()
        with self._lock:
            self._deadlines[ident] = time.monotonic() + seconds
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.pop(ident, None)
                if ident in self._fired:
                    self._fired.discard(ident)
                    _raise_in(ident, None)  # the body ended before the exception arrived

    def _watch(self) -> None:
        while True:
            time.sleep(self._interval)
            now = time.monotonic()
            with self._lock:
                for ident, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[ident]
                        self._fired.add(ident)
                        log.warning("a task ran past its time limit; cutting it off")
                        _raise_in(ident, TimeLimitExceeded)
