"""Gunicorn's answer to a request it refuses itself, written by a function of ours.

Why: the contract answers every error as problem+json; what gunicorn refuses before the app
sees it (414, 431, 400) it answers with an HTML page of its own.

- Touches: ``gunicorn.util.write_error`` (replaced for the whole process, in each web worker
  after the fork), which ``gunicorn.workers.base.Worker.handle_error`` calls (the gevent
  worker's is the same).
- Checked with: gunicorn 27.0.1.
- Upstream: https://github.com/benoitc/gunicorn/issues/993 (custom error pages: closed without
  the setting its maintainer was open to) and https://github.com/benoitc/gunicorn/issues/3246
  (open: error pages in the type the client accepts).
- Canary: ``tests/unit/test_patches.py``: ``write_error``'s source as checked, and a refusal
  handled by gunicorn's worker is written by ours.
"""

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
