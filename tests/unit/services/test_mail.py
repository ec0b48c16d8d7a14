"""deliver_mail with the in-memory provider and a real Redis store."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from config import Settings
from notifier import create_app
from notifier.errors import NotForThisProvider, PermanentProviderError, TransientProviderError
from notifier.providers.base import MessageRef, OutgoingMail
from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.services.mail import deliver_mail
from notifier.stores.notifications import NotificationStore
from tests.support.delivery import delivery
from tests.support.harness.mail import PAYLOAD


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    """A fresh app's runtime on the test Redis."""
    found: Runtime = create_app(make_settings()).extensions["notifier"]
    return found


@pytest.fixture
def store(rt: Runtime) -> NotificationStore:
    return rt.store


def new(store: NotificationStore, send_at: float | None = None) -> str:
    record = store.create(
        notification_id="n1", client="tester", kind="mail", payload=PAYLOAD, send_at=send_at
    )
    return record.id


def test_sent_records_provider_and_forgets_the_content(
    rt: Runtime, store: NotificationStore
) -> None:
    provider = MemoryMailProvider()
    outcome = deliver_mail(delivery(rt, mail=provider, max_attempts=3), new(store))
    assert (outcome.status, outcome.attempt) == ("sent", 1)
    (message,) = provider.sent
    assert message.recipients == ("ada@example.com", "audit@example.com")
    record = store.get("n1")
    assert record is not None
    assert (record.status, record.attempts, record.provider, record.error) == (
        "sent",
        1,
        "memory",
        None,
    )
    assert store.payload("n1") is None


def test_transient_failure_asks_for_a_retry_then_fails_at_the_limit(
    rt: Runtime,
    store: NotificationStore,
) -> None:
    failure = TransientProviderError("SMTP 451: try later", provider="memory")
    provider = MemoryMailProvider(failures=[failure, failure])
    first = deliver_mail(delivery(rt, mail=provider, max_attempts=2), new(store))
    assert (first.status, first.attempt) == ("retry", 1)
    record = store.get("n1")
    assert record is not None and (record.status, record.error) == (
        "retrying",
        "SMTP 451: try later",
    )
    second = deliver_mail(delivery(rt, mail=provider, max_attempts=2), "n1")
    assert (second.status, second.attempt) == ("failed", 2)
    record = store.get("n1")
    assert record is not None and (record.status, record.attempts) == ("failed", 2)
    assert provider.sent == []


def test_permanent_failure_fails_at_once(rt: Runtime, store: NotificationStore) -> None:
    provider = MemoryMailProvider(
        failures=[PermanentProviderError("SMTP 550: no such user", provider="memory")]
    )
    outcome = deliver_mail(delivery(rt, mail=provider, max_attempts=8), new(store))
    assert (outcome.status, outcome.attempt) == ("failed", 1)
    record = store.get("n1")
    assert record is not None
    assert (record.status, record.attempts, record.error) == ("failed", 1, "SMTP 550: no such user")


def test_a_throttled_provider_hands_the_mail_to_the_next(
    rt: Runtime, store: NotificationStore
) -> None:
    first = MemoryMailProvider(
        [TransientProviderError("ses TooManyRequestsException: slow down", provider="first")],
        name="first",
    )
    second = MemoryMailProvider(name="second")
    outcome = deliver_mail(delivery(rt, mail=[first, second]), new(store))
    assert (outcome.status, outcome.attempt) == ("sent", 1)
    assert (first.sent, [m.notification_id for m in second.sent]) == ([], ["n1"])
    record = store.get("n1")
    assert record is not None
    assert (record.status, record.provider) == ("sent", "second")
    assert record.provider_ref == "<n1@second>"


def test_a_refused_recipient_is_not_handed_over(rt: Runtime, store: NotificationStore) -> None:
    first = MemoryMailProvider(
        [PermanentProviderError("SMTP 550: no such user", provider="first")], name="first"
    )
    second = MemoryMailProvider(name="second")
    outcome = deliver_mail(delivery(rt, mail=[first, second], max_attempts=8), new(store))
    assert (outcome.status, outcome.attempt) == ("failed", 1)
    assert second.sent == []
    record = store.get("n1")
    assert record is not None
    assert (record.status, record.provider, record.error) == (
        "failed", "first", "SMTP 550: no such user",
    )  # fmt: skip


def test_a_provider_that_cannot_carry_the_mail_hands_it_over_or_fails_it_for_good(
    rt: Runtime, store: NotificationStore
) -> None:
    def ses() -> MemoryMailProvider:
        cannot = NotForThisProvider("SES does not take SMTPUTF8", provider="ses")
        return MemoryMailProvider([cannot], name="ses")

    smtp = MemoryMailProvider(name="smtp")
    outcome = deliver_mail(delivery(rt, mail=[ses(), smtp]), new(store))
    assert outcome.status == "sent" and [m.notification_id for m in smtp.sent] == ["n1"]
    # With none that can, it fails for good at once: no retry could carry it either.
    store.create(notification_id="n2", client="tester", kind="mail", payload=PAYLOAD)
    outcome = deliver_mail(delivery(rt, mail=[ses()], max_attempts=8), "n2")
    assert (outcome.status, outcome.attempt) == ("failed", 1)
    record = store.get("n2")
    assert record is not None and record.error == "SES does not take SMTPUTF8"


def test_every_provider_down_is_retried_naming_each(rt: Runtime, store: NotificationStore) -> None:
    route = [
        MemoryMailProvider([TransientProviderError("503", provider=name)], name=name)
        for name in ("first", "second")
    ]
    outcome = deliver_mail(delivery(rt, mail=route), new(store))
    assert outcome.status == "retry"
    record = store.get("n1")
    assert record is not None
    assert (record.status, record.provider, record.error) == (
        "retrying", "second", "first: 503; second: 503",
    )  # fmt: skip
    # The next attempt starts again at the first provider, which is back.
    assert deliver_mail(delivery(rt, mail=route), "n1").status == "sent"
    record = store.get("n1")
    assert record is not None and (record.provider, record.attempts) == ("first", 2)


def test_a_redelivered_message_of_a_sent_mail_sends_nothing(
    rt: Runtime, store: NotificationStore
) -> None:
    provider = MemoryMailProvider()
    deliver_mail(delivery(rt, mail=provider, max_attempts=3), new(store))
    again = deliver_mail(delivery(rt, mail=provider, max_attempts=3), "n1")
    assert again.status == "skipped"
    assert len(provider.sent) == 1


def test_a_cancelled_mail_is_never_sent(rt: Runtime, store: NotificationStore) -> None:
    provider = MemoryMailProvider()
    new(store, send_at=4102444800.0)
    assert store.cancel("n1") == "scheduled"
    assert deliver_mail(delivery(rt, mail=provider, max_attempts=3), "n1").status == "skipped"
    assert provider.sent == []


def test_due_scheduled_ids_are_leased_once_until_dispatched(store: NotificationStore) -> None:
    new(store, send_at=1000.0)
    assert store.lease_due(now=1001.0, lease=60) == ["n1"]
    assert store.lease_due(now=1002.0, lease=60) == []  # another dispatcher: already leased
    assert store.lease_due(now=1062.0, lease=60) == ["n1"]  # the first one died: due again
    store.dispatched("n1")
    record = store.get("n1")
    assert record is not None and record.status == "queued"
    assert store.lease_due(now=99999.0, lease=60) == []


@pytest.mark.parametrize(
    ("base", "one_click"), [("https://n.example", True), ("http://localhost:8000", False)]
)
def test_one_click_unsubscribe_is_offered_only_over_https(base: str, one_click: bool) -> None:
    # RFC 8058 3.1: the List-Unsubscribe of a one-click mail holds "one HTTPS URI"; receivers
    # ignore one-click beside an http link, and may flag the pair.
    from notifier.services.mail import unsubscribe_headers

    payload = {"bulk": True, "to": ["ada@example.com"]}
    headers = dict(unsubscribe_headers(payload, "shop", lambda c, a: f"{base}/v1/unsubscribe/t"))
    assert headers["List-Unsubscribe"] == f"<{base}/v1/unsubscribe/t>"
    assert ("List-Unsubscribe-Post" in headers) is one_click


class RefusesSome(MemoryMailProvider):
    """A relay that takes the mail but refuses ``audit@example.com`` at RCPT with ``reply``."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    def send_mail(self, *, message: OutgoingMail) -> str:
        return MessageRef(super().send_mail(message=message), {"Audit@example.com": self.reply})


@pytest.mark.parametrize(
    ("reply", "suppressed", "soft"),
    [
        ("550 5.1.1 <Audit@example.com>: user unknown", True, None),
        ("550 5.2.1 mailbox disabled", True, None),
        ("553 5.1.8 bad outbound sender", False, None),  # our sender's, not the address's
        ("554 5.7.1 rejected by policy", False, None),  # the content or the policy's
        ("450 4.2.1 mailbox busy", False, "4.2.1"),
        ("451 try again later", False, "451"),
    ],
)
def test_a_recipient_refused_among_several_is_treated_as_its_bounce(
    rt: Runtime, store: NotificationStore, reply: str, suppressed: bool, soft: str | None
) -> None:
    assert deliver_mail(delivery(rt, mail=RefusesSome(reply)), new(store)).status == "sent"
    entry = rt.suppressions.get("tester", "audit@example.com")
    assert (entry is not None and entry.reason == "bounced") is suppressed
    record = store.get("n1")
    assert record is not None
    assert (record.soft_bounce.status if record.soft_bounce else None) == soft


def test_a_refused_recipient_that_cannot_be_noted_leaves_the_mail_sent(
    rt: Runtime, store: NotificationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay took the mail for the others: a full Redis refusing the suppression must not make
    # it a failed attempt, whose retry would send it again to everyone.
    def full(*_: object, **__: object) -> None:
        raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(rt.suppressions, "add", full)
    provider = RefusesSome("550 5.1.1 <Audit@example.com>: user unknown")
    assert deliver_mail(delivery(rt, mail=provider), new(store)).status == "sent"
    record = store.get("n1")
    assert record is not None and record.status == "sent" and len(provider.sent) == 1
