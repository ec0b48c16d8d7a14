"""An exception no provider classified: a failed attempt with a generic error, retried, capped."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis

from config import Settings
from notifier import create_app
from notifier.providers.base import OutgoingMail
from notifier.providers.memory import MemorySmsProvider
from notifier.runtime import Runtime
from notifier.services.captcha import deliver_captcha
from notifier.services.delivery import Unrecorded
from notifier.services.mail import deliver_mail
from tests.support.delivery import delivery
from tests.support.harness.captcha import accept
from tests.support.harness.mail import PAYLOAD


class Buggy:
    """A provider with a bug: raises ``ValueError`` (quoting an address) ``bugs`` times."""

    name = "buggy"

    def __init__(self, bugs: int) -> None:
        self.bugs = bugs
        self.sent: list[str] = []

    def _send(self, what: str) -> str:
        if self.bugs:
            self.bugs -= 1
            raise ValueError("cannot encode <ada.lovelace@example.com>")
        self.sent.append(what)
        return "id-1"

    def send_mail(self, *, message: OutgoingMail) -> str:
        return self._send(message.subject)

    def send_sms(self, *, to: str, body: str) -> str:
        return self._send(body)

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    """A runtime on the test Redis."""
    found: Runtime = create_app(make_settings()).extensions["notifier"]
    return found


def mail(rt: Runtime, provider: Buggy, max_attempts: int = 3) -> str:
    rt.store.create(notification_id="n1", client="tester", kind="mail", payload=PAYLOAD)
    return deliver_mail(delivery(rt, mail=provider, max_attempts=max_attempts), "n1").status


def test_a_bug_is_a_failed_attempt_with_a_generic_error_and_a_logged_traceback(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="notifier.services.delivery"):
        assert mail(rt, Buggy(bugs=1)) == "retry"
    record = rt.store.get("n1")
    assert record is not None
    assert (record.status, record.attempts, record.provider, record.error) == (
        "retrying",
        1,
        None,
        "internal error (ValueError)",
    )
    assert rt.store.payload("n1") is not None  # kept for the retry
    (logged,) = caplog.records
    assert logged.levelno == logging.ERROR and logged.exc_info is not None
    assert logged.exc_info[0] is ValueError


def test_a_bug_fixed_before_the_retry_still_delivers(rt: Runtime) -> None:
    provider = Buggy(bugs=1)
    assert mail(rt, provider) == "retry"
    again = deliver_mail(delivery(rt, mail=provider, max_attempts=3), "n1")
    assert (again.status, again.attempt, provider.sent) == ("sent", 2, ["Hi"])


def test_a_bug_that_stays_fails_the_notification_at_the_attempt_cap(rt: Runtime) -> None:
    provider = Buggy(bugs=2)
    assert mail(rt, provider, max_attempts=2) == "retry"
    last = deliver_mail(delivery(rt, mail=provider, max_attempts=2), "n1")
    assert (last.status, last.attempt) == ("failed", 2)
    record = rt.store.get("n1")
    assert record is not None
    assert (record.status, record.error) == ("failed", "internal error (ValueError)")
    assert rt.store.payload("n1") is None  # the content is gone with the final status


def test_a_bug_in_a_captcha_send_retries_before_the_code_expires(rt: Runtime) -> None:
    notification_id = accept(rt)
    buggy, spare = Buggy(bugs=1), MemorySmsProvider()
    outcome = deliver_captcha(delivery(rt, sms=[buggy, spare]), notification_id)
    assert (outcome.status, outcome.attempt) == ("retry", 1)
    payload = rt.store.payload(notification_id)
    assert payload is not None and outcome.deadline == payload["deadline"]
    record = rt.store.get(notification_id)
    assert record is not None
    assert (record.status, record.error) == ("retrying", "internal error (ValueError)")


def test_a_send_the_provider_took_but_redis_could_not_record_is_no_failed_attempt(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away past the store's patience as the relay takes the mail: recorded as a failed
    attempt, the retrying a Redis back a moment later takes would send it again in seconds.
    Raised instead (run_attempt retries), the claim kept: its next run waits out the lease."""
    provider = Buggy(bugs=0)
    settle = rt.store.settle

    def away(notification_id: str, status: str, **kw: object) -> object:
        if status == "sent":
            raise redis.ConnectionError("Connection refused")
        return settle(notification_id, status, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(rt.store, "settle", away)
    with pytest.raises(Unrecorded, match="sent by buggy, but not recorded"):
        mail(rt, provider)
    monkeypatch.undo()
    record = rt.store.get("n1")
    assert record is not None and (record.status, record.attempts) == ("sending", 1)
    assert provider.sent == ["Hi"]
    again = deliver_mail(delivery(rt, mail=provider, max_attempts=3), "n1")
    assert again.status == "busy"  # under the first attempt's claim until its lease runs out
