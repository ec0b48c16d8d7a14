"""The one retry decision every sending task makes, and its delays: backoff with full jitter."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from celery import Task
from celery.exceptions import Retry

from notifier.lanes import LANES
from notifier.redisconn import refusal
from notifier.runtime import runtime
from notifier.services.delivery import Delivery, Outcome
from notifier.settings import Settings

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


def lane_of(task: Task[Any, Any]) -> str:
    """The lane the task's message came on; '' when it came on none of ours (run eagerly)."""
    # Native delayed delivery prefixes the routing key with the delay's bits ("0.1.….mail").
    lane = str((task.request.delivery_info or {}).get("routing_key") or "").rsplit(".", 1)[-1]
    return lane if lane in LANES else ""


def retry_in(task: Task[Any, Any], seconds: float, settings: Settings, **options: Any) -> Retry:
    """Celery's Retry that runs ``task`` again in ``seconds``, in the lane its message came on
    (``options``: more of ``Task.retry``'s, such as new ``kwargs``).

    With quorum lanes Celery parks the retry in RabbitMQ's delay queues (native delayed
    delivery), which count whole seconds and cannot take less than one (Celery's publish
    raises, and the retry would be dropped): so a wait is rounded up to whole seconds. And they
    send it to the queue Celery routes the task to, not to the lane it came on (a batch row's
    retry would leave ``bulk`` for ``mail``): so the lane is named.
    """
    if settings.broker_queue_type == "quorum" and seconds > 0:
        seconds = float(math.ceil(seconds))
    if lane := lane_of(task):
        return task.retry(countdown=seconds, queue=lane, **options)
    return task.retry(countdown=seconds, **options)


def retry_with_backoff(task: Task[Any, Any], settings: Settings) -> Retry:
    """Celery's Retry after the backoff of the task's next try."""
    delay = backoff(task.request.retries + 1, base=settings.retry_base, cap=settings.retry_cap)
    return retry_in(task, delay, settings)


class Deliver(Protocol):
    """A channel's delivery function: ``deliver_mail``, ``deliver_captcha``, ..."""

    def __call__(self, d: Delivery, notification_id: str, *, lane: str = "") -> Outcome: ...


def deliver(task: Task[Any, Any], how: Deliver, notification_id: str) -> None:
    """One attempt of ``how`` with this process's delivery bundle, retried as it asks."""
    rt = runtime()
    run_attempt(task, partial(how, rt.delivery, notification_id, lane=lane_of(task)), rt.settings)


def run_attempt(task: Task[Any, Any], attempt: Callable[[], Outcome], settings: Settings) -> None:
    """Make one delivery attempt, then retry as its outcome asks.

    The attempt records its own failures, unexpected ones included. When even that fails
    (Redis went away mid-attempt, or refused writes past the attempt's patience), the message
    comes back after a backoff all the same: its next run waits out the claim this one left, so
    the record never stays ``sending``.
    """
    try:
        outcome = attempt()
    except Exception as e:
        refused = refusal(e)
        if refused is None:
            log.exception("%s: the attempt could not be recorded; retrying", task.request.id)
        else:  # a state of Redis the operator is told of (/readyz, the 503s), not a bug
            log.warning("%s: the attempt could not be recorded: %s; retrying",
                        task.request.id, refused)  # fmt: skip
        raise retry_with_backoff(task, settings) from None
    retry_if_asked(task, outcome, settings)


def retry_if_asked(task: Task[Any, Any], outcome: Outcome, settings: Settings) -> None:
    """Raise Celery's Retry after a backoff when the outcome asks for it."""
    if outcome.status == "busy":
        # Look again when the other claim runs out; this is no attempt of ours.
        raise retry_in(task, outcome.wait + 0.1, settings)
    if outcome.status != "retry":
        return
    delay = backoff(outcome.attempt, base=settings.retry_base, cap=settings.retry_cap)
    if outcome.deadline is not None:
        # Never retry past the deadline: go sooner instead, while the try can still count.
        delay = min(delay, max(0.0, outcome.deadline - time.time() - 1))
    raise retry_in(task, delay, settings)
