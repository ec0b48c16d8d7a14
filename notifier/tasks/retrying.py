"""The one retry decision every sending task makes."""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from config import Settings
from notifier.retry import backoff
from notifier.services.delivery import Outcome


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
