"""One callback attempt: what is sent, where it is never sent in production, and the gate that
decides which callbacks a worker process attempts now."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from standardwebhooks.webhooks import Webhook

from config import ApiClient, Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.callbacks import (
    TIMEOUT,
    CallbackGate,
    CallbackSender,
    Event,
    Held,
    Outcome,
    deliver_callback,
    subject,
)
from notifier.services.message_log import timeline
from notifier.stores.batches import BatchStore
from notifier.stores.notifications import NotificationStore
from notifier.stores.receivers import THRESHOLD, Receivers
from tests.support.harness.wait import wait_for
from tests.support.peers.receiver import CallbackReceiver

SECRET = "whsec_" + base64.b64encode(b"sixteen and more bytes").decode()


@pytest.fixture
def store(make_settings: Callable[..., Settings]) -> NotificationStore:
    """A store with one sent mail, n1, with a reference."""
    found: NotificationStore = create_app(make_settings()).extensions["notifier"].store
    found.create(notification_id="n1", client="c", kind="mail", payload={}, reference="ref-1")
    found.claim("n1", lease=30, max_attempts=5)
    found.settle("n1", "sent", provider="smtp", provider_ref="<m1@example.com>")
    return found


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """A local receiver of callbacks."""
    running = CallbackReceiver()
    yield running
    running.stop()


def attempt(store: NotificationStore, event: Event, url: str, sender: CallbackSender) -> str:
    """One attempt, with the body the task would send."""
    found = subject(event, store=store, batches=BatchStore(store.redis, 60))
    body = found[1] if found else None
    return deliver_callback(event, store=store, body=body, client=client(url), sender=sender)


def client(url: str) -> ApiClient:
    return ApiClient.model_validate(
        {"client": "c", "key_sha256": "0" * 64, "callback_url": url, "callback_secret": SECRET}
    )


def test_the_body_is_the_status_record_with_the_events_status(
    store: NotificationStore, receiver: CallbackReceiver
) -> None:
    sender = CallbackSender(production=False, max_connections=2)
    # An event of an hour ago (its retries after a receiver's outage): signed at the attempt's
    # time, which Standard Webhooks receivers hold within 5 minutes of their clock. (Signed at
    # the event's, every retry past 5 minutes was refused: "Message timestamp too old".)
    event = Event("n1", "delivered", "msg_1", int(time.time()) - 3600)
    before = int(time.time())
    outcome = attempt(store, event, receiver.url, sender)
    assert outcome == "sent"
    (got,) = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == "msg_1"
    assert before <= int(headers["webhook-timestamp"]) <= time.time()
    secret = base64.b64decode(SECRET.removeprefix("whsec_"))
    body: dict[str, Any] = json.loads(got.body)
    Webhook(secret).verify(got.body, headers)  # raises if too old or badly signed
    assert body["status"] == "delivered" and body["reference"] == "ref-1"
    assert body["provider_ref"] == "<m1@example.com>" and "client" not in body


def test_in_production_a_name_that_resolves_to_loopback_is_never_called(
    store: NotificationStore, receiver: CallbackReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.server.server_address[1]
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        # hooks.example.com is the caller's name, and (rebound, or by mistake) it is us.
        return real("127.0.0.1" if host == "hooks.example.com" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    sender = CallbackSender(production=True, max_connections=2)
    event = Event("n1", "sent", "msg_2", 1_795_000_000)
    url = f"https://hooks.example.com:{port}/hook"
    assert attempt(store, event, url, sender) == "dropped"
    assert receiver.received == []
    assert store.counted("callbacks:failed") == 1


def test_a_non_2xx_answer_asks_for_a_retry(
    store: NotificationStore, receiver: CallbackReceiver
) -> None:
    receiver.answers.append(503)
    sender = CallbackSender(production=False, max_connections=2)
    event = Event("n1", "sent", "msg_3", 1_795_000_000)
    assert attempt(store, event, receiver.url, sender) == "retry"
    assert store.counted("callbacks:retrying") == 1


def test_each_attempt_is_on_the_notification_s_timeline_with_its_next_retry(
    store: NotificationStore, receiver: CallbackReceiver
) -> None:
    receiver.answers += [503, 503]
    sender = CallbackSender(production=False, max_connections=2)
    event = Event("n1", "sent", "msg_4", 1_795_000_000)
    for retry_at in (1_795_000_060.0, None):  # the second: too late for another
        found = subject(event, store=store, batches=BatchStore(store.redis, 60))
        body = found[1] if found else None
        deliver_callback(
            event, store=store, body=body, client=client(receiver.url), sender=sender,
            retry_at=retry_at,
        )  # fmt: skip
    assert attempt(store, event, receiver.url, sender) == "sent"
    rt = cast(Runtime, SimpleNamespace(redis=store.redis))  # a timeline reads the record only
    steps = [
        (s.what, s.outcome, s.detail) for s in timeline(rt, "n1") or [] if s.what == "callback"
    ]
    assert steps == [
        ("callback", "HTTP 503", "sent; next retry at 2026-11-18T11:07:40.000Z"),
        ("callback", "HTTP 503", "sent; not retried"),
        ("callback", "HTTP 200", "sent"),
    ]


class Blocked:
    """Calls that stay in flight until released, each on a thread of its own."""

    def __init__(self, gate: CallbackGate) -> None:
        self.gate = gate
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.outcomes: list[object] = []

    def call(self) -> Outcome:
        self.started.release()
        self.release.wait(10)
        return "sent"

    def start(self, url: str) -> None:
        def run() -> None:
            self.outcomes.append(self.gate.attempt(url, 0, self.call))

        threading.Thread(target=run, daemon=True).start()
        assert self.started.acquire(timeout=10)


def gate(store: NotificationStore, total: int, per_receiver: int, **kw: float) -> CallbackGate:
    receivers = Receivers(store.redis, base=kw.get("base", 10), cap=30, probe_lease=6)
    return CallbackGate(receivers, total=total, per_receiver=per_receiver, cap=kw.get("cap", 30))


def test_a_process_runs_at_most_its_share_of_callbacks_and_never_waits_for_one(
    store: NotificationStore,
) -> None:
    blocked = Blocked(gate(store, total=2, per_receiver=2))
    blocked.start("https://a.example/hook")
    blocked.start("https://b.example/hook")
    started = time.monotonic()
    held = blocked.gate.attempt("https://c.example/hook", 0, lambda: "sent")
    assert time.monotonic() - started < 0.5
    assert isinstance(held, Held) and held.why == "busy"
    blocked.release.set()
    wait_for(lambda: blocked.outcomes == ["sent", "sent"], what="the two to finish")
    assert blocked.gate.attempt("https://c.example/hook", 0, lambda: "sent") == "sent"


def test_one_receiver_takes_at_most_its_cap_and_the_others_still_go(
    store: NotificationStore,
) -> None:
    blocked = Blocked(gate(store, total=3, per_receiver=1))
    blocked.start("https://slow.example/hook")
    held = blocked.gate.attempt("https://slow.example/hook", 0, lambda: "sent")
    assert isinstance(held, Held) and held.why == "receiver busy"
    assert blocked.gate.attempt("https://other.example/hook", 0, lambda: "sent") == "sent"
    blocked.release.set()


def test_a_receiver_that_keeps_failing_is_held_without_a_call(store: NotificationStore) -> None:
    hooks = gate(store, total=4, per_receiver=4, base=10)
    for _ in range(THRESHOLD):
        assert hooks.attempt("https://down.example/hook", 0, lambda: "retry") == "retry"
    called: list[str] = []

    def call() -> Outcome:
        called.append("called")
        return "sent"

    held = hooks.attempt("https://down.example/hook", 0, call)
    assert isinstance(held, Held) and held.why == "receiver held" and called == []
    assert 10 - 1 < held.seconds <= 10 + TIMEOUT
    assert hooks.attempt("https://up.example/hook", 0, lambda: "sent") == "sent"


def test_a_probe_that_gets_a_2xx_ends_the_hold(store: NotificationStore) -> None:
    hooks = gate(store, total=4, per_receiver=4, base=0.05)
    url = "https://back.example/hook"
    for _ in range(THRESHOLD):
        hooks.attempt(url, 0, lambda: "retry")
    wait_for(lambda: hooks.attempt(url, 0, lambda: "sent") == "sent", timeout=5, what="a probe")
    assert hooks.attempt(url, 0, lambda: "sent") == "sent"  # no hold, no probe to wait for


def test_a_held_callbacks_waits_grow_and_stay_under_the_cap(store: NotificationStore) -> None:
    blocked = Blocked(gate(store, total=1, per_receiver=1, cap=8))
    blocked.start("https://a.example/hook")
    waits = []
    for deferred in range(10):
        held = blocked.gate.attempt("https://b.example/hook", deferred, lambda: "sent")
        assert isinstance(held, Held)
        waits.append(held.seconds)
    blocked.release.set()
    assert 0.25 <= waits[0] <= 0.5 and 2 <= waits[3] <= 4
    assert all(4 <= w <= 8 for w in waits[5:])
