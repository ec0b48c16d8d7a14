"""Latency histograms in Redis: a first claim's wait in its lane, a send's time to the provider."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from notifier import create_app
from notifier.stores.notifications import NotificationStore, record_key

# Ids in two shards (their first characters), so a scrape must add shards up.
ONE, OTHER = "a0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """The app on the test Redis."""
    return create_app(make_settings())


@pytest.fixture
def store(app: Flask) -> NotificationStore:
    """Its notification store."""
    found: NotificationStore = app.extensions["notifier"].store
    return found


def queued(store: NotificationStore, notification_id: str, ago: float, test: bool = False) -> None:
    """A mail whose message went on its lane ``ago`` seconds ago."""
    store.create(notification_id=notification_id, client="c", kind="mail", payload={}, test=test)
    store.redis.hset(record_key(notification_id), "queued_at", repr(time.time() - ago))


def histogram(app: Flask, name: str, lane: str, kind: str) -> dict[str, float]:
    """The series of one histogram of /metrics: ``le`` -> count, and ``sum`` and ``count``."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("lane") != lane or sample.labels.get("kind") != kind:
                continue
            if sample.name == f"{name}_bucket":
                found[sample.labels["le"]] = sample.value
            elif sample.name in (f"{name}_sum", f"{name}_count"):
                found[sample.name.removeprefix(f"{name}_")] = sample.value
    return found


def test_a_first_claim_counts_its_wait_in_its_lane_and_shards_add_up(
    app: Flask, store: NotificationStore
) -> None:
    queued(store, ONE, ago=1.5)
    queued(store, OTHER, ago=0.2)
    for notification_id in (ONE, OTHER):
        assert store.claim(notification_id, lease=0, max_attempts=5, lane="mail").attempt == 1
    store.claim(ONE, lease=0, max_attempts=5, lane="mail")  # a second attempt: not a lane wait
    wait = histogram(app, "notifier_queue_wait_seconds", "mail", "mail")
    assert (wait["0.1"], wait["0.25"], wait["1.0"], wait["2.0"], wait["+Inf"]) == (0, 1, 1, 2, 2)
    assert wait["count"] == 2 and 1.7 <= wait["sum"] < 2.5
    assert histogram(app, "notifier_delivery_seconds", "mail", "mail") == {}  # nothing sent


def test_a_send_the_provider_took_counts_from_accept_retries_included(
    app: Flask, store: NotificationStore
) -> None:
    queued(store, ONE, ago=3)
    store.claim(ONE, lease=0, max_attempts=5, lane="bulk")
    store.settle(ONE, "retrying", provider="smtp", error="451 busy")  # not an answer that counts
    store.claim(ONE, lease=30, max_attempts=5, lane="bulk")
    store.settle(ONE, "sent", provider="smtp", provider_ref="ref-1")
    sent = histogram(app, "notifier_delivery_seconds", "bulk", "mail")
    assert (sent["2.0"], sent["5.0"], sent["count"]) == (0, 1, 1) and 3 <= sent["sum"] < 4


def test_no_latency_without_a_lane_a_provider_or_live_traffic(
    app: Flask, store: NotificationStore
) -> None:
    queued(store, ONE, ago=1)
    store.claim(ONE, lease=30, max_attempts=5)  # no lane: a claim outside a worker
    store.settle(ONE, "sent", provider="smtp")
    queued(store, OTHER, ago=1, test=True)  # a test key's: simulated, no provider reached
    store.claim(OTHER, lease=30, max_attempts=5, lane="mail")
    store.settle(OTHER, "sent", provider="simulated")
    assert histogram(app, "notifier_delivery_seconds", "mail", "mail") == {}
    assert histogram(app, "notifier_queue_wait_seconds", "mail", "mail")["count"] == 1
    failed = "c0000000-0000-4000-8000-000000000003"
    queued(store, failed, ago=1)
    store.claim(failed, lease=30, max_attempts=5, lane="captcha")
    store.settle(failed, "failed", provider="smtp", error="550 no such user")
    assert histogram(app, "notifier_delivery_seconds", "captcha", "mail") == {}


def test_a_scheduled_mail_waits_from_its_dispatch_not_its_accept(
    app: Flask, store: NotificationStore
) -> None:
    store.create(notification_id=ONE, client="c", kind="mail", payload={}, send_at=time.time() - 60)
    assert store.redis.hget(record_key(ONE), "queued_at") is None
    assert store.lease_due(now=time.time(), lease=30) == [ONE]
    store.dispatched(ONE)
    store.claim(ONE, lease=30, max_attempts=5, lane="mail")
    wait = histogram(app, "notifier_queue_wait_seconds", "mail", "mail")
    assert wait["count"] == 1 and wait["1.0"] == 1  # not the minute it was due before
