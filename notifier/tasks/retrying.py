"""The one retry decision every sending task makes, and its delays: backoff with full jitter."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from celery import Task

from config import Settings
from notifier.services.delivery import Outcome

log = logging.getLogger(__name__)


def backoff(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter spreads the retries of many messages that failed together (AWS Architecture
    Blog, "Exponential Backoff And Jitter"): uniform in ``[0, min(cap, base * 2**(attempt-1))]``.
    """
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    return float(rng() * ceiling)


def run_attempt(task: Task[Any, Any], attempt: Callable[[], Outcome], settings: Settings) -> None:
    """Make one delivery attempt, then retry as its outcome asks.

    The attempt records its own failures, unexpected ones included. When even that fails
    (Redis went away mid-attempt), the message comes back after a backoff all the same: its
    next run waits out the claim this one left, so the record never stays ``sending``.
    """
    try:
        outcome = attempt()
    except Exception:
        log.exception("%s: the attempt could not be recorded; retrying", task.request.id)
        retries = task.request.retries + 1
        raise task.retry(
            countdown=backoff(retries, base=settings.retry_base, cap=settings.retry_cap)
        ) from None
    retry_if_asked(task, outcome, settings)


def retry_if_asked(task: Task[Any, Any], outcome: Outcome, settings: Settings) -> None:
    """Raise Celery's Retry after a backoff when the outcome asks for it."""
    if outcome.status == "busy":
        # Look again when the other claim runs out; this is no attempt of ours.
        raise task.retry(countdown=outcome.wait + 0.1)
    if outcome.status != "retry":
        return
    delay = backoff(outcome.attempt, base=settings.retry_base, cap=settings.retry_cap)
    if outcome.deadline is not None:
        # Never retry past the deadline: go sooner instead, while the try can still count.
        delay = min(delay, max(0.0, outcome.deadline - time.time() - 1))
    raise task.retry(countdown=delay)
