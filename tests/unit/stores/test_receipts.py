"""Receipts never move a record backwards; callbacks go with the status change, once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from flask import Flask

from config import ApiClient, Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.stores.notifications import NotificationStore
from tests.support.harness.clients import api_clients

SECRET = "whsec_" + base64.b64encode(b"a secret of enough bytes").decode()


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """An app whose client 'hooked' wants status callbacks."""
    hooked = ApiClient.model_validate(
        {
            "client": "hooked",
            "key_sha256": "0" * 64,
            "scopes": ["mail"],
            "callback_url": "http://127.0.0.1:9/hook",
            "callback_secret": SECRET,
        }
    )
    return create_app(make_settings(api_keys=[*api_clients(), hooked]))


@pytest.fixture
def rt(app: Flask) -> Runtime:
    found: Runtime = app.extensions["notifier"]
    return found


def sent(store: NotificationStore, notification_id: str, client: str = "hooked") -> None:
    store.create(notification_id=notification_id, client=client, kind="sms_captcha", payload={})
    store.claim(notification_id, lease=30, max_attempts=5)
    store.settle(notification_id, "sent", provider="twilio", provider_ref=f"SM{notification_id}")


def callbacks(rt: Runtime) -> list[list[object]]:
    """The send_callback messages queued, oldest first, as their arguments."""
    raw = reversed(rt.redis.lrange("callbacks", 0, -1))
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0] for m in raw]


def status(store: NotificationStore, notification_id: str) -> str:
    record = store.get(notification_id)
    assert record is not None
    return record.status


def test_delivered_once_and_never_back(rt: Runtime) -> None:
    store = rt.store
    sent(store, "n1")
    record = store.get("n1")
    assert record is not None and record.provider_ref == "SMn1"
    assert store.receipt("twilio", "SMn1", "delivered") == "moved"
    assert status(store, "n1") == "delivered"
    # Twice, or the other receipt status after it: nothing moves.
    assert store.receipt("twilio", "SMn1", "delivered") == "delivered"
    assert store.receipt("twilio", "SMn1", "undelivered", error="late") == "delivered"
    assert status(store, "n1") == "delivered"
    assert [c[1] for c in callbacks(rt)] == ["sent", "delivered"]


def test_a_receipt_before_the_send_is_recorded_is_applied_when_it_is(rt: Runtime) -> None:
    store = rt.store
    assert store.receipt("twilio", "SMn2", "undelivered", error="Twilio error 30003") == "early"
    sent(store, "n2")
    record = store.get("n2")
    assert record is not None
    assert (record.status, record.error) == ("undelivered", "Twilio error 30003")
    assert [c[1] for c in callbacks(rt)] == ["sent", "undelivered"]


def test_a_receipt_for_a_message_not_yet_sent_changes_nothing(rt: Runtime) -> None:
    store = rt.store
    store.create(notification_id="n3", client="hooked", kind="mail", payload={})
    assert store.receipt("twilio", "SMn3", "delivered") == "early"
    assert status(store, "n3") == "queued"


def test_callbacks_only_for_clients_that_want_them_and_only_final_statuses(rt: Runtime) -> None:
    store = rt.store
    sent(store, "quiet", client="tester")
    store.create(notification_id="n4", client="hooked", kind="mail", payload={})
    store.claim("n4", lease=30, max_attempts=5)
    store.settle("n4", "retrying", provider="smtp", error="421")
    store.claim("n4", lease=30, max_attempts=5)
    store.settle("n4", "failed", provider="smtp", error="550")
    (event,) = callbacks(rt)
    notification_id, event_status, webhook_id, timestamp = event
    assert (notification_id, event_status) == ("n4", "failed")
    assert str(webhook_id).startswith("msg_") and isinstance(timestamp, int)


def test_cancel_queues_a_callback(rt: Runtime) -> None:
    store = rt.store
    store.create(
        notification_id="n5", client="hooked", kind="mail", payload={}, send_at=2_000_000_000
    )
    assert store.cancel("n5") == "scheduled"
    assert [c[:2] for c in callbacks(rt)] == [["n5", "cancelled"]]


def test_a_notification_given_up_by_its_claim_tells_its_client(rt: Runtime) -> None:
    store = rt.store
    store.create(notification_id="n6", client="hooked", kind="mail", payload={})
    store.claim("n6", lease=0, max_attempts=1)  # its worker died holding it
    assert store.claim("n6", lease=30, max_attempts=1).status == "failed"
    assert [c[:2] for c in callbacks(rt)] == [["n6", "failed"]]


def test_a_receipt_that_comes_while_its_send_is_being_recorded_is_applied_by_it(
    app: Flask,
) -> None:
    """The settle indexes the provider's id before it moves the status: a receipt in between
    finds the record still sending, keeps itself, and the settle applies it."""
    rt: Runtime = app.extensions["notifier"]
    store = rt.store
    record = store.create(notification_id="r1", client="tester", kind="mail", payload={})
    store.claim(record.id, lease=30, max_attempts=3)
    rt.redis.set("notifier:ref:twilio:SM1", record.id)  # what settle writes first
    assert store.receipt("twilio", "SM1", "delivered") == "early"
    store.settle(record.id, "sent", provider="twilio", provider_ref="SM1")
    assert store.get(record.id).status == "delivered"  # type: ignore[union-attr]
    assert rt.redis.get("notifier:receipt:twilio:SM1") is None


class AwayBroker:
    """Another broker than the state Redis (a callback is published after its status moved),
    which refuses every publish while ``away``."""

    def __init__(self) -> None:
        self.away = True
        self.published: list[tuple[object, ...]] = []

    def direct(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        return None

    def publish(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        if self.away:
            raise ConnectionError("the broker blocks publishing (a memory alarm)")
        self.published.append((notification_id, *rest))


def test_a_callback_the_broker_refused_is_owed_and_published_by_the_sweep(rt: Runtime) -> None:
    broker = AwayBroker()
    store = NotificationStore(
        rt.redis, ttl=3600, callbacks=broker, callback_clients=frozenset({"hooked"})
    )
    store.create(notification_id="n-1", client="hooked", kind="sms_captcha", payload={})
    store.claim("n-1", lease=30, max_attempts=5)
    # Neither the send's record nor the receipt fails on it: their statuses moved, and a
    # vendor's retry of the receipt would find nothing left to move, so no callback ever.
    store.settle("n-1", "sent", provider="twilio", provider_ref="SM1")
    assert store.receipt("twilio", "SM1", "delivered") == "moved"
    assert store.receipt("twilio", "SM1", "delivered") == "delivered"
    assert store.publish_owed(time.time()) == 0  # not due yet
    assert store.publish_owed(time.time() + 60) == 0 and not broker.published  # away still
    broker.away = False
    assert store.publish_owed(time.time() + 120) == 2
    assert [p[:2] for p in broker.published] == [("n-1", "sent"), ("n-1", "delivered")]
    first = broker.published[0]
    assert str(first[2]).startswith("msg_") and isinstance(first[3], int)
    assert store.publish_owed(time.time() + 180) == 0 and len(broker.published) == 2
