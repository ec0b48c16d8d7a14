"""Wait for a condition, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | Literal[False] | None],
    *,
    timeout: float = 20.0,
    what: str = "condition",
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    ``check`` may answer ``cond and value`` or ``re.search(...)``: the waiting ends on the value,
    so the result is typed without the ``False`` or ``None`` it stands for until then.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
