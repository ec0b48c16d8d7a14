"""run_attempt: the retry decision of every sending task."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import pytest
from celery import Task
from redis.exceptions import ConnectionError as RedisConnectionError

from config import Settings
from notifier.services.delivery import Outcome
from notifier.tasks.retrying import run_attempt


class Retry(Exception):
    """What the fake task's ``retry`` returns, as Celery's does."""


@dataclass
class FakeTask:
    """The parts of a bound Celery task that the retry decision uses."""

    retries: int = 0
    countdowns: list[float] = field(default_factory=list)

    @property
    def request(self) -> Any:
        return type("Request", (), {"id": "t-1", "retries": self.retries})()

    def retry(self, *, countdown: float) -> Retry:
        self.countdowns.append(countdown)
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
