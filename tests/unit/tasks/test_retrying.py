"""run_attempt: the retry decision of every sending task."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, cast

import pytest
from celery import Task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError

from config import Settings
from notifier.services.delivery import Outcome
from notifier.tasks.retrying import run_attempt


class Retry(Exception):
    """What the fake task's ``retry`` returns, as Celery's does."""


@dataclass
class FakeTask:
    """The parts of a bound Celery task that the retry decision uses."""

    retries: int = 0
    # Where the message came from, as the broker delivered it.
    routing_key: str = "mail"
    countdowns: list[float] = field(default_factory=list)
    queues: list[str | None] = field(default_factory=list)

    @property
    def request(self) -> Any:
        delivery_info = {"exchange": "mail", "routing_key": self.routing_key}
        fields = {"id": "t-1", "retries": self.retries, "delivery_info": delivery_info}
        return type("Request", (), fields)()

    def retry(self, *, countdown: float, queue: str | None = None) -> Retry:
        self.countdowns.append(countdown)
        self.queues.append(queue)
        return Retry()


def run(task: FakeTask, attempt: Callable[[], Outcome], settings: Settings) -> None:
    run_attempt(cast(Task[Any, Any], task), attempt, settings)


def test_an_attempt_that_could_not_even_record_its_failure_is_retried(
    make_settings: Callable[..., Settings],
) -> None:
    def redis_gone() -> Outcome:
        raise RedisConnectionError("Connection refused")

    task = FakeTask(retries=3)
    settings = make_settings(retry_base=2, retry_cap=600)
    with pytest.raises(Retry):
        run(task, redis_gone, settings)
    (countdown,) = task.countdowns
    assert 0 <= countdown <= 2 * 2**3  # the backoff of the fourth try


def test_an_attempt_a_full_redis_refused_is_retried_with_a_warning_naming_it(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """Not an ERROR with a traceback: Redis is full, which the operator is told of elsewhere."""

    def redis_full() -> Outcome:
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    task = FakeTask()
    with caplog.at_level(logging.WARNING, logger="notifier.tasks.retrying"), pytest.raises(Retry):
        run(task, redis_full, make_settings())
    (logged,) = caplog.records
    assert (logged.levelno, logged.exc_info) == (logging.WARNING, None)
    assert "Redis refuses writes (OOM)" in logged.getMessage()


def test_the_outcome_decides_when_the_attempt_returns(
    make_settings: Callable[..., Settings],
) -> None:
    task = FakeTask()
    run(task, lambda: Outcome("sent", 1), make_settings())
    assert task.countdowns == []
    with pytest.raises(Retry):
        run(task, lambda: Outcome("retry", 1), make_settings(retry_base=2, retry_cap=600))
    assert len(task.countdowns) == 1 and 0 <= task.countdowns[0] <= 2


def test_a_busy_notification_is_looked_at_again_when_the_other_claim_runs_out(
    make_settings: Callable[..., Settings],
) -> None:
    task = FakeTask()
    with pytest.raises(Retry):
        run(task, lambda: Outcome("busy", wait=12.5), make_settings())
    assert task.countdowns == [12.6]


def test_a_retry_never_waits_past_the_deadline(make_settings: Callable[..., Settings]) -> None:
    task = FakeTask()
    deadline = time.time() + 5
    with pytest.raises(Retry):
        run(task, lambda: Outcome("retry", 9, deadline=deadline), make_settings(retry_base=100))
    (countdown,) = task.countdowns
    assert 0 <= countdown <= 4  # the backoff of try 9 would be minutes


@pytest.mark.parametrize("status", ["sent", "failed", "skipped"])
def test_a_settled_outcome_is_not_retried(
    make_settings: Callable[..., Settings], status: Literal["sent", "failed", "skipped"]
) -> None:
    task = FakeTask()
    run(task, lambda: Outcome(status, 1), make_settings())
    assert task.countdowns == []


QUORUM = {"broker_url": "amqp://guest:guest@mq.internal//", "broker_queue_type": "quorum"}


def test_a_retry_stays_in_the_lane_its_message_came_on(
    make_settings: Callable[..., Settings],
) -> None:
    # A batch row's send_mail came on bulk, though Celery routes send_mail to mail; after RabbitMQ's
    # delay queues its routing key carries the delay's bits in front.
    delayed = "0." * 27 + "1.bulk"
    for settings in (make_settings(), make_settings(**QUORUM)):
        for key in ("bulk", delayed):
            task = FakeTask(routing_key=key)
            with pytest.raises(Retry):
                run(task, lambda: Outcome("retry", 1), settings)
            assert task.queues == ["bulk"]


def test_a_message_from_no_lane_is_retried_where_celery_routes_it(
    make_settings: Callable[..., Settings],
) -> None:
    task = FakeTask(routing_key="someone-elses-queue")
    with pytest.raises(Retry):
        run(task, lambda: Outcome("busy", wait=1), make_settings())
    assert task.queues == [None]


def test_with_quorum_lanes_a_wait_is_whole_seconds_and_never_under_one(
    make_settings: Callable[..., Settings],
) -> None:
    # RabbitMQ's delay queues count whole seconds; Celery refuses a fraction of one.
    task = FakeTask()
    for wait in (0.0, 0.2, 12.5):
        with pytest.raises(Retry):
            run(task, partial(Outcome, "busy", wait=wait), make_settings(**QUORUM))
    assert task.countdowns == [1.0, 1.0, 13.0]
    with pytest.raises(Retry):
        run(task, partial(Outcome, "busy", wait=0.2), make_settings())
    assert task.countdowns[-1] == pytest.approx(0.3)  # Redis and classic lanes keep fractions
