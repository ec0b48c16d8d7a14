"""Gunicorn's answer to a request it refuses itself, written by a function of ours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]


def answer_refusals_with(render: Callable[[int, str, str], bytes]) -> None:
    """Gunicorn answers what it refuses itself with ``render(status, reason, detail)``."""

    def write_problem(sock: Any, status: int, reason: str, detail: str) -> None:
        util.write_nonblock(sock, render(status, reason, detail))

    # Gunicorn answers what it refuses itself (a request line past 4094 bytes: 414, a header
    # too large: 431, a malformed request: 400) through this one function, as an HTML page;
    # callers get the API's problem+json instead, like every other error.
    util.write_error = write_problem
