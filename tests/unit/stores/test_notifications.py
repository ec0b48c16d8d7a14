"""Claims on notifications: one holder at a time, a lease that runs out, a cap on attempts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.stores.notifications import NotificationStore
from tests.support.harness.keyslots import SlotWatch


@pytest.fixture
def store(make_settings: Callable[..., Settings]) -> NotificationStore:
    """The store of a fresh app on the test Redis, with one queued notification n1."""
    found: NotificationStore = create_app(make_settings()).extensions["notifier"].store
    found.create(notification_id="n1", client="c", kind="mail", payload={"x": 1})
    return found


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    """A fresh app's runtime on the test Redis, with one queued notification n1."""
    found: Runtime = create_app(make_settings()).extensions["notifier"]
    found.store.create(notification_id="n1", client="c", kind="mail", payload={"x": 1})
    return found


def test_a_send_s_outcome_is_recorded_in_one_round_trip(rt: Runtime) -> None:
    """The outcome of every send: its provider's id indexed, the status script, the early
    receipt read, in one pipeline and nothing before it (redis-py asked SCRIPT EXISTS first,
    each time: a round trip more a mail)."""
    rt.store.claim("n1", lease=30, max_attempts=5)
    rt.store.settle("n0", "sent", provider="smtp", provider_ref="<m0@example.com>")  # loaded
    with SlotWatch(rt.redis_url) as watch:
        rt.store.settle("n1", "sent", provider="smtp", provider_ref="<m1@example.com>")
    sent = [(o.head.name, o.head.args[1] if o.kind == "script" else "") for o in watch.operations]
    assert sent == [
        ("EVALSHA", rt.store._index_ref.sha), ("EVALSHA", rt.store._settle.sha), ("GET", ""),
    ]  # fmt: skip
    assert getattr(rt.store.get("n1"), "status", None) == "sent"


def test_an_outcome_is_recorded_on_a_redis_that_lost_the_scripts(rt: Runtime) -> None:
    """A Redis restarted, flushed or promoted from a replica answers NOSCRIPT: the scripts are
    loaded again and the outcome recorded, once."""
    rt.store.claim("n1", lease=30, max_attempts=5)
    rt.store.settle("n0", "sent", provider="smtp", provider_ref="<m0@example.com>")  # loaded
    rt.redis.script_flush()
    rt.store.settle("n1", "sent", provider="smtp", provider_ref="<m1@example.com>")
    record = rt.store.get("n1")
    assert record is not None and (record.status, record.provider_ref) == (
        "sent",
        "<m1@example.com>",
    )
    assert rt.redis.get("notifier:ref:smtp:<m1@example.com>") == "n1"


def test_a_held_claim_makes_others_wait(store: NotificationStore) -> None:
    first = store.claim("n1", lease=30, max_attempts=5)
    assert (first.status, first.attempt) == ("sending", 1)
    second = store.claim("n1", lease=30, max_attempts=5)
    assert second.status == "busy"
    assert 29 < second.wait <= 30
    record = store.get("n1")
    assert record is not None and record.attempts == 1


def test_a_claim_whose_holder_died_runs_out(store: NotificationStore) -> None:
    store.claim("n1", lease=0, max_attempts=5)  # a lease that has run out already
    again = store.claim("n1", lease=30, max_attempts=5)
    assert (again.status, again.attempt) == ("sending", 2)


def test_attempts_that_never_finish_are_capped(store: NotificationStore) -> None:
    for attempt in (1, 2):
        assert store.claim("n1", lease=0, max_attempts=2).attempt == attempt
    gave_up = store.claim("n1", lease=0, max_attempts=2)
    assert gave_up.status == "failed"
    record = store.get("n1")
    assert record is not None and record.status == "failed"
    assert record.error == "gave up after 2 attempts that did not finish"
    assert store.payload("n1") is None


def test_final_records_are_not_claimed_or_reopened(store: NotificationStore) -> None:
    store.claim("n1", lease=30, max_attempts=5)
    store.settle("n1", "sent", provider="smtp")
    assert store.claim("n1", lease=30, max_attempts=5).status == "sent"
    store.settle("n1", "failed", provider=None, error="expired", only_if_waiting=True)
    record = store.get("n1")
    assert record is not None and (record.status, record.error) == ("sent", None)


def test_an_expired_message_fails_a_waiting_record_not_one_whose_attempt_is_under_way(
    store: NotificationStore,
) -> None:
    """A copy of a captcha's message that expired unrun must not call a code its attempt may
    be sending (or may have sent, its outcome not recorded yet) "expired before it was sent"."""
    store.create(notification_id="waiting", client="c", kind="sms_captcha", payload={})
    store.create(notification_id="under-way", client="c", kind="sms_captcha", payload={})
    store.claim("under-way", lease=30, max_attempts=5)
    for notification_id in ("waiting", "under-way"):
        store.settle(notification_id, "failed", provider=None, error="expired",
                     only_if_waiting=True)  # fmt: skip
    statuses = [getattr(store.get(n), "status", None) for n in ("waiting", "under-way")]
    assert statuses == ["failed", "sending"]


def test_leased_due_ids_go_to_one_dispatcher_and_come_back_if_it_dies(
    store: NotificationStore,
) -> None:
    store.create(notification_id="due", client="c", kind="mail", payload={}, send_at=1000.0)
    assert store.lease_due(now=1001.0, lease=60) == ["due"]
    # A second dispatcher (another beat's task) finds nothing while the lease holds.
    assert store.lease_due(now=1002.0, lease=60) == []
    # The first one died before queueing it: the id comes due again when the lease runs out.
    assert store.lease_due(now=1062.0, lease=60) == ["due"]
    store.dispatched("due")
    assert store.lease_due(now=2000.0, lease=60) == []
    record = store.get("due")
    assert record is not None and record.status == "queued"
