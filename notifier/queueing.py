"""Putting a notification's task on the queue.

With a Redis broker that is also the state Redis (the usual set-up), the task message is pushed
in the same Redis transaction that stores the notification: one round trip instead of three,
and there is no moment when a record exists without its message or the other way round. The
message is the one Celery would publish (built by Celery's own ``as_task_v2``, wrapped the way
kombu's Redis transport wraps it by :mod:`notifier.patches.kombu_envelope`; a test compares the
two). With any other broker, Celery publishes it after the record is stored, and a publish
that fails takes the record back. :class:`Intake` does either, in that order.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from celery import Celery
from redis import RedisError

from notifier import tracing
from notifier.logs import request_id
from notifier.patches.kombu_envelope import redis_envelope

log = logging.getLogger(__name__)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# A failure quicker than this is looked behind (was it stored after all?); a slower one, a
# timeout, is not: the look would wait as long again on a Redis that hangs.
LOOK_WITHIN = 1.0

# Seconds a publish waits for RabbitMQ's confirm (celery_ext turns confirms on). One that never
# comes (a frozen node, a quorum queue without its majority) must not hold a request for ever:
# the publish is tried again on a new connection, then fails (the caller's 503).
CONFIRM_TIMEOUT = 1.0


# Told the id and the answer's status (queued or scheduled) of what a request stores and
# queues, as soon as its record means it is accepted: the Idempotency-Key's slot of the request
# keeps them, so a retry after the request died before its answer answers from the record
# (api/idempotency.py).
Note = Callable[[str, str], None]


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


class Record(Protocol[T_co]):
    """What a request stores for its task: written, or taken back when its task cannot be
    published."""

    def write(self, push: tuple[str, str] | None) -> T_co:
        """Store it, and push ``push`` (a Redis list and message) in the same transaction."""
        ...

    def take_back(self) -> bool:
        """Remove what :meth:`write` stored; False, and kept, when its task has run already (the
        broker took the message, though its publish failed)."""
        ...

    def stored(self) -> T_co | None:
        """What :meth:`write` stored, if it is there."""
        ...


@dataclass(frozen=True)
class Intake:
    """Store a record and queue its task, both or neither, through ``queue``; ``note`` (an
    Idempotency-Key's) is told the id once the record means the request is accepted."""

    queue: Enqueuer
    note: Note | None = None

    def take(
        self, task_id: str, record: Record[T], *, now: bool = True, expires: float | None = None
    ) -> T:
        """Store ``record`` and queue the task for ``task_id`` (unless not ``now``: it waits
        for the schedule), in the order the broker allows; a task that cannot be queued takes
        its record with it, so the caller's 503 is true.

        A write whose answer never came may have been made all the same (the connection lost
        after the command went): what it stored is looked for before a quick failure is raised,
        and when it is there the request was accepted (its caller keeps the limits it took;
        its Idempotency-Key keeps its answer), not a 503 whose retry would send it a second
        time. Not after a slow one (a timeout: a Redis that hangs would answer the look no
        sooner, and the 503 must come within 2 s): its Idempotency-Key stays pending instead
        (api/idempotency.py), so a retry with the key answers from the record once it can."""
        started = time.monotonic()
        try:
            return self._take(task_id, record, now=now, expires=expires)
        except Exception:
            if time.monotonic() - started < LOOK_WITHIN:
                with contextlib.suppress(RedisError):  # cannot tell: the failure stands
                    if (kept := record.stored()) is not None:
                        log.warning("%s: stored after all, though its write failed", task_id)
                        return kept
            raise

    def _take(self, task_id: str, record: Record[T], *, now: bool, expires: float | None) -> T:
        if not now:  # nothing to queue yet: the record alone is the acceptance
            self._tell(task_id, "scheduled")
            return record.write(None)
        push = self.queue.direct(task_id, expires=expires)
        if push is not None:  # the state Redis is the broker: one transaction for both
            self._tell(task_id, "queued")
            return record.write(push)
        # Another broker: store, publish, and take the record back if the publish fails; told
        # only after the publish, so a retry never answers from a record about to go.
        stored = record.write(None)
        try:
            self.queue.publish(task_id, expires=expires)
        except Exception as failed:
            if self._kept(task_id, record):
                log.warning("%s: its publish failed, but it is kept: accepted", task_id)
            else:
                raise failed from None
        self._tell(task_id, "queued")
        return stored

    def _kept(self, task_id: str, record: Record[T]) -> bool:
        """After a failed publish: take ``record`` back, or say it is kept. Kept when a worker
        has it already (the broker took the message, though its confirm never came), and when
        the take-back's answer was lost and the record is still there (or cannot be looked for):
        the sweep queues it (tasks/schedule.py's requeue_lost, 30 s on), the request accepted,
        late, where a 503's retry would send it a second time."""
        try:
            return not record.take_back()
        except RedisError as e:
            try:
                there = record.stored() is not None
            except RedisError:
                there = True  # cannot tell: it was written, and nothing said it went
            if there:
                log.warning(
                    "%s: not published, not taken back (%s): the sweep queues it", task_id, e
                )
            return there

    def _tell(self, task_id: str, status: str) -> None:
        if self.note is not None:
            self.note(task_id, status)


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
        task = self.celery.tasks[self.task]
        task_id = str(uuid.uuid4())
        headers, properties, body, _ = self.celery.amqp.as_task_v2(
            task_id,
            self.task,
            args=(notification_id, *rest),
            kwargs={},
            expires=_when(expires),
            # The task's own limits, as Celery's publish gives them (a code's are shorter).
            time_limit=task.time_limit,
            soft_time_limit=task.soft_time_limit,
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
