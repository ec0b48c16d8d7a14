"""Putting a notification's task on the queue.

With a Redis broker that is also the state Redis (the usual set-up), the task message is pushed
in the same Redis transaction that stores the notification: one round trip instead of three,
and there is no moment when a record exists without its message or the other way round. The
message is the one Celery would publish (built by Celery's own ``as_task_v2``, wrapped the way
kombu's Redis transport wraps it by :mod:`notifier.patches.kombu_envelope`; a test compares the
two). With any other broker, Celery publishes it after the record is stored.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from celery import Celery

from notifier import tracing
from notifier.logs import request_id
from notifier.patches.kombu_envelope import redis_envelope

T = TypeVar("T")

# Seconds a publish waits for RabbitMQ's confirm (celery_ext turns confirms on). One that never
# comes (a frozen node, a quorum queue without its majority) must not hold a request for ever:
# the publish is tried again on a new connection, then fails (the caller's 503).
CONFIRM_TIMEOUT = 1.0


# Told the id and the answer's status (queued or scheduled) of what a request stores and
# queues, as soon as its record means it is accepted: the Idempotency-Key's slot of the request
# keeps them, so a retry after the request died before its answer answers from the record
# (api/idempotency.py).
about_to_store: ContextVar[Callable[[str, str], None] | None] = ContextVar(
    "about_to_store", default=None
)


class Enqueuer(Protocol):
    """Puts a task for an id on the queue (:class:`TaskQueue`, or a test's stand-in)."""

    def direct(
        self, notification_id: str, *rest: str | int, expires: float | None = None
    ) -> tuple[str, str] | None:
        """A (Redis list, message) to push with the state it is for, or None."""
        ...

    def publish(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        """Publish after the state is stored."""
        ...


def stored_and_queued(
    queue: Enqueuer,
    task_id: str,
    store: Callable[[tuple[str, str] | None], T],
    discard: Callable[[], None],
    *,
    now: bool = True,
    expires: float | None = None,
) -> T:
    """Store what the task is for and queue the task (``now``), both or neither.

    ``store`` is given the message to push in its own Redis transaction (or None: then it is
    published after, and a message that cannot be published takes the stored state with it,
    through ``discard``, so the caller's 503 is true).
    """
    push = queue.direct(task_id, expires=expires) if now else None
    tell = about_to_store.get()
    # Told once the record's existence means it is accepted: before the store when the message
    # goes in the store's own transaction (or none is due yet), after the publish otherwise (a
    # publish that fails takes the record back).
    if tell is not None and not (now and push is None):
        tell(task_id, "queued" if now else "scheduled")
    stored = store(push)
    if now and push is None:
        try:
            queue.publish(task_id, expires=expires)
        except Exception:
            discard()
            raise
        if tell is not None:
            tell(task_id, "queued")
    return stored


@dataclass
class TaskQueue:
    """Queue one task, named ``task``, for a notification id, in the lane Celery routes it to."""

    celery: Celery
    task: str
    # The broker is the state Redis, so messages can go in the state transaction.
    direct_ok: bool
    origin: str = field(default_factory=lambda: f"notifier@{socket.gethostname()}")
    # The lane, when not the one Celery's routes name for the task (a batch's mails).
    lane: str | None = None

    def __post_init__(self) -> None:
        # Where Celery itself would publish it: the lane its routes name, through the anonymous
        # exchange (as Celery publishes to a direct queue), which is how kombu puts a message
        # back in its list after a worker dies.
        self.queue: str = self.lane or self.celery.amqp.router.route({}, self.task)["queue"].name

    def direct(
        self, notification_id: str, *rest: str | int, expires: float | None = None
    ) -> tuple[str, str] | None:
        """The Redis list and message to push with the record, or None to publish after.

        The task's arguments are the notification id and ``rest``.
        """
        if not self.direct_ok:
            return None
        conf = self.celery.conf
        task_id = str(uuid.uuid4())
        headers, properties, body, _ = self.celery.amqp.as_task_v2(
            task_id,
            self.task,
            args=(notification_id, *rest),
            kwargs={},
            expires=_when(expires),
            time_limit=conf.task_time_limit,
            soft_time_limit=conf.task_soft_time_limit,
            origin=self.origin,
            ignore_result=True,
            argsrepr=repr((notification_id, *rest)),
            kwargsrepr="{}",
        )
        if current := request_id.get():
            headers["request_id"] = current  # as celery_ext's before_task_publish does
        # The trace goes on in the worker, as the Celery instrumentation's publish would carry it.
        tracing.carry(headers)
        return self.queue, redis_envelope(body, headers, properties, self.queue, expires)

    def publish(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        """Publish through Celery (raises when the broker cannot be reached)."""
        task = self.celery.tasks[self.task]
        when = _when(expires)
        options: dict[str, Any] = {"queue": self.queue, "confirm_timeout": CONFIRM_TIMEOUT}
        if when is None:
            task.apply_async(args=(notification_id, *rest), **options)
        else:
            task.apply_async(args=(notification_id, *rest), expires=when, **options)


def _when(expires: float | None) -> datetime | None:
    return None if expires is None else datetime.fromtimestamp(expires, UTC)
