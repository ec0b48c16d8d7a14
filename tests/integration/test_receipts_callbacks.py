"""Delivery receipts and status callbacks, through HTTP, Redis, a real worker and real peers.

Twilio's side is the Twilio-wire server driven by the real SDK; it posts receipts signed as
Twilio signs them (the SDK's own RequestValidator). The caller's side is a plain HTTP receiver
that checks each callback with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import signal
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.support.harness.callbacks import HOOKED_KEY, HOOKED_SECRET, PUBLIC_URL, Callbacks
from tests.support.harness.processes import start_worker
from tests.support.harness.stack import Caller
from tests.support.harness.wait import wait_for
from tests.support.peers.receiver import CallbackReceiver

pytestmark = pytest.mark.integration


@dataclass
class Hooked(Caller):
    """The stack, as the client whose callbacks go to ``receiver``."""

    receiver: CallbackReceiver

    def captcha(self) -> tuple[str, str]:
        """Send a captcha through Twilio; its notification id and Twilio's message SID."""
        phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
        notification_id = self.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})
        record = self.wait_status(notification_id, "sent")
        sid = record["provider_ref"]
        assert sid.startswith("SM") and record["provider"] == "twilio"
        return notification_id, sid


@pytest.fixture
def hooked(callbacks: Callbacks) -> Hooked:
    """A stack with NOTIFIER_PUBLIC_URL set and a client whose callbacks go to a receiver: the
    session's ``callbacks`` (tests/support/harness/callbacks.py), test_test_keys.py's too."""
    return Hooked(callbacks.stack, HOOKED_KEY, callbacks.live)


def test_a_signed_delivered_receipt_moves_the_captcha_to_delivered(hooked: Hooked) -> None:
    notification_id, sid = hooked.captcha()
    twilio = hooked.stack.twilio
    assert twilio.status_callbacks[sid] == f"{PUBLIC_URL}/v1/receipts/twilio"
    answer = twilio.receipt(sid, "delivered", deliver_to=hooked.stack.base)
    assert answer.status_code == 200
    assert hooked.status(notification_id)["status"] == "delivered"
    # A late "sent" after it, and the same receipt again, change nothing.
    assert twilio.receipt(sid, "sent", deliver_to=hooked.stack.base).status_code == 200
    assert twilio.receipt(sid, "delivered", deliver_to=hooked.stack.base).status_code == 200
    assert hooked.status(notification_id)["status"] == "delivered"
    metrics = hooked.stack.get("/metrics").text
    assert 'notifier_receipts_total{provider="twilio",status="delivered"} ' in metrics
    # The client hears of it: its callbacks go out from a worker after the receipt's answer,
    # and each is counted once its receiver has answered.
    wait_for(
        lambda: any(
            b'"delivered"' in r.body for r in hooked.receiver.for_notification(notification_id)
        ),
        what="the delivered callback",
    )
    wait_for(
        lambda: 'notifier_callbacks_total{outcome="sent"} ' in hooked.stack.get("/metrics").text,
        what="the callback counted",
    )


def test_a_tampered_receipt_is_403_and_changes_nothing(hooked: Hooked) -> None:
    notification_id, sid = hooked.captcha()
    twilio = hooked.stack.twilio
    answer = twilio.receipt(sid, "undelivered", deliver_to=hooked.stack.base, tamper=True)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/problem+json"
    unsigned = requests.post(
        f"{hooked.stack.base}/v1/receipts/twilio",
        data={"MessageSid": sid, "MessageStatus": "delivered"},
        timeout=10,
    )
    assert unsigned.status_code == 403
    assert hooked.status(notification_id)["status"] == "sent"


def test_undelivered_with_twilios_error_code(hooked: Hooked) -> None:
    notification_id, sid = hooked.captcha()
    twilio = hooked.stack.twilio
    answer = twilio.receipt(sid, "undelivered", deliver_to=hooked.stack.base, error_code="30003")
    assert answer.status_code == 200
    record = hooked.status(notification_id)
    assert (record["status"], record["error"]) == ("undelivered", "Twilio error 30003")


def test_an_unknown_message_sid_is_200_and_ignored(hooked: Hooked) -> None:
    twilio = hooked.stack.twilio
    _, sid = hooked.captcha()
    unknown = "SM" + uuid.uuid4().hex
    twilio.status_callbacks[unknown] = twilio.status_callbacks[sid]
    assert twilio.receipt(unknown, "delivered", deliver_to=hooked.stack.base).status_code == 200


def verified(received: Any) -> dict[str, Any]:
    """The callback's JSON, after the standardwebhooks package verified its signature."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    body: dict[str, Any] = Webhook(HOOKED_SECRET).verify(received.body, headers)
    return body


def test_a_mail_callback_is_signed_and_carries_the_reference(hooked: Hooked) -> None:
    to = f"cb-{uuid.uuid4().hex[:8]}@example.com"
    notification_id = hooked.post(
        "/v1/mail", {"to": [to], "subject": "Hi", "text": "Hello", "reference": "order-42"}
    )
    (callback,) = wait_for(lambda: hooked.receiver.for_notification(notification_id))
    body = verified(callback)
    assert body["id"] == notification_id and body["status"] == "sent"
    assert body["reference"] == "order-42"
    assert body["provider_ref"].startswith("<") and "client" not in body
    assert to not in callback.body.decode()


def test_a_receiver_that_fails_twice_gets_three_tries_with_one_webhook_id(hooked: Hooked) -> None:
    # Its own callbacks' answers: a callback of another test still in flight takes none.
    reference = f"retry-{uuid.uuid4().hex[:8]}"
    hooked.receiver.plan(reference, [500, 500])
    notification_id = hooked.post(
        "/v1/mail",
        {"to": ["retry@example.com"], "subject": "Hi", "text": "Hello", "reference": reference},
    )
    tries = wait_for(
        lambda: len(r := hooked.receiver.for_notification(notification_id)) >= 3 and r,
        what="three tries",
    )
    assert len({t.headers["webhook-id"] for t in tries}) == 1
    assert all(verified(t)["status"] == "sent" for t in tries)


@pytest.mark.soak
def test_a_worker_killed_mid_callback_loses_none(hooked: Hooked) -> None:
    hooked.receiver.released.clear()  # the receiver hangs on the first try
    try:
        notification_id = hooked.post(
            "/v1/mail", {"to": ["killed@example.com"], "subject": "Hi", "text": "Hello"}
        )
        wait_for(lambda: hooked.receiver.for_notification(notification_id), what="a first try")
        hooked.stack.worker.stop(signal.SIGKILL)
    finally:
        hooked.receiver.released.set()
    first = hooked.receiver.for_notification(notification_id)[0]
    hooked.stack.worker = start_worker(hooked.stack.env)
    tries = wait_for(
        lambda: len(r := hooked.receiver.for_notification(notification_id)) >= 2 and r,
        timeout=60,
        what="the callback again after the visibility timeout",
    )
    assert {t.headers["webhook-id"] for t in tries} == {first.headers["webhook-id"]}
