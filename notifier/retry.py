"""Retry delays: exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter spreads the retries of many messages that failed together (AWS Architecture
    Blog, "Exponential Backoff And Jitter"): uniform in ``[0, min(cap, base * 2**(attempt-1))]``.
    """
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    return float(rng() * ceiling)
