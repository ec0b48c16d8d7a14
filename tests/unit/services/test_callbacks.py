"""One callback attempt: what is sent, and where it is never sent in production."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from config import ApiClient, Settings
from notifier import create_app
from notifier.services.callbacks import CallbackSender, Event, deliver_callback, subject
from notifier.stores.batches import BatchStore
from notifier.stores.notifications import NotificationStore
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
    event = Event("n1", "delivered", "msg_1", 1_795_000_000)
    outcome = attempt(store, event, receiver.url, sender)
    assert outcome == "sent"
    (got,) = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_1", "1795000000")
    secret = base64.b64decode(SECRET.removeprefix("whsec_"))
    body: dict[str, Any] = json.loads(got.body)
    moment = datetime.fromtimestamp(1_795_000_000, UTC)
    expected = Webhook(secret).sign("msg_1", moment, got.body.decode())
    assert headers["webhook-signature"] == expected
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
