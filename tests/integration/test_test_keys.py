"""Test keys: everything a live key gets, but delivery simulated and no provider ever called.

The stack has smtp and twilio configured against servers that count every connection; the test
client's callbacks go to a local receiver.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.support.harness.batches import batch, post_batch, rows, wait_batch
from tests.support.harness.callbacks import TEST_KEY, Callbacks
from tests.support.harness.clients import auth
from tests.support.harness.stack import Caller
from tests.support.harness.wait import wait_for
from tests.support.peers.receiver import CallbackReceiver
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = pytest.mark.integration


@dataclass
class Sandbox(Caller):
    receiver: CallbackReceiver
    smtp: SmtpSink
    twilio: FakeTwilio


@pytest.fixture
def sandbox(callbacks: Callbacks, smtp: SmtpSink, twilio: FakeTwilio) -> Sandbox:
    """A stack with a test client ("mode": "test") beside the live ones: the session's
    ``callbacks`` (tests/support/harness/callbacks.py), test_receipts_callbacks.py's too."""
    return Sandbox(callbacks.stack, TEST_KEY, callbacks.test, smtp, twilio)


def mail(sandbox: Sandbox, local: str) -> str:
    to = f"{local}@example.com"
    return sandbox.post("/v1/mail", {"to": [to], "subject": "Hi", "text": "Hello"})


def captcha(sandbox: Sandbox, phone: str) -> str:
    return sandbox.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})


def test_magic_recipients_reach_their_statuses_and_no_provider_is_contacted(
    sandbox: Sandbox,
) -> None:
    smtp_before, twilio_before = sandbox.smtp.connections, sandbox.twilio.connections
    requests_before, messages_before = sandbox.twilio.requests, len(sandbox.smtp.handler.messages)
    expected = {
        mail(sandbox, f"ada-{uuid.uuid4().hex[:6]}"): ("delivered", 1),
        mail(sandbox, "simulate-temporary-failure"): ("sent", 3),
        mail(sandbox, "simulate-permanent-failure"): ("failed", 1),
        mail(sandbox, "simulate-undelivered"): ("undelivered", 1),
        captcha(sandbox, f"+86139{uuid.uuid4().int % 10**8:08d}"): ("delivered", 1),
        captcha(sandbox, "+8613800000001"): ("sent", 3),
        captcha(sandbox, "+8613800000002"): ("failed", 1),
        captcha(sandbox, "+8613800000003"): ("undelivered", 1),
    }
    final = ("delivered", "undelivered", "failed", "sent")
    for notification_id, (status, attempts) in expected.items():
        record = sandbox.wait_status(notification_id, *final)
        if status == "sent":  # a temporary failure goes through on its third attempt
            record = sandbox.wait_status(notification_id, "sent")
        assert (record["status"], record["attempts"], record["provider"]) == (
            status, attempts, "test",
        ), record  # fmt: skip
    assert (sandbox.smtp.connections, sandbox.twilio.connections) == (smtp_before, twilio_before)
    assert sandbox.twilio.requests == requests_before
    assert len(sandbox.smtp.handler.messages) == messages_before


def test_a_test_captcha_shows_its_code_and_verifies_with_it(sandbox: Sandbox) -> None:
    phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
    record = sandbox.wait_status(captcha(sandbox, phone), "delivered")
    code = record["test_code"]
    assert code.isdigit()
    verdict = requests.post(
        f"{sandbox.stack.base}/v1/sms/captcha/verify",
        json={"phone": phone, "purpose": "login", "code": code},
        headers=sandbox.headers,
        timeout=10,
    )
    assert verdict.json() == {"valid": True}


def test_a_live_keys_record_never_has_a_test_code(sandbox: Sandbox) -> None:
    phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
    live = sandbox.stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})
    record = sandbox.stack.wait_status(live.json()["id"], "sent")
    assert "test_code" not in record
    assert len(sandbox.twilio.texts_to(phone)) == 1  # the live key did reach the provider
    answer = requests.get(
        f"{sandbox.stack.base}/v1/notifications/{live.json()['id']}", headers=auth(), timeout=10
    )
    assert "test_code" not in answer.text


def test_a_callback_fires_for_a_test_notification(sandbox: Sandbox) -> None:
    notification_id = mail(sandbox, f"grace-{uuid.uuid4().hex[:6]}")
    got = wait_for(
        lambda: len(r := sandbox.receiver.for_notification(notification_id)) >= 2 and r,
        what="the sent and delivered callbacks",
    )
    assert sorted(json.loads(r.body)["status"] for r in got) == ["delivered", "sent"]


def test_test_traffic_is_told_apart_in_metrics_and_logs(sandbox: Sandbox) -> None:
    notification_id = mail(sandbox, f"metrics-{uuid.uuid4().hex[:6]}")
    sandbox.wait_status(notification_id, "delivered")
    metrics = sandbox.stack.get("/metrics").text
    assert 'notifier_notifications_total{kind="mail",mode="test",status="delivered"}' in metrics
    lines = [json.loads(x) for x in sandbox.stack.web.output().splitlines() if x[:1] == "{"]
    access = [x for x in lines if x.get("logger") == "notifier.access"]
    assert any(x.get("mode") == "test" for x in access)
    assert any("mode" not in x for x in access)  # live requests carry no mode


def test_a_test_keys_batch_is_simulated_row_by_row_and_tells_when_done(sandbox: Sandbox) -> None:
    messages_before = len(sandbox.smtp.handler.messages)
    recipients = rows(3, "tkb")
    recipients[1]["to"] = "simulate-permanent-failure@example.com"
    base, headers = sandbox.stack.base, sandbox.headers
    batch_id = post_batch(base, recipients, headers)["id"]
    wait_batch(base, batch_id, "done", headers=headers)
    # Done once every row is final (sent counts); the receipts then move sent to delivered.
    done = wait_for(
        lambda: (b := batch(base, batch_id, headers))["counts"].get("sent", 0) == 0 and b,
        what="the simulated receipts",
    )
    assert done["counts"] == {"delivered": 2, "failed": 1}
    # Each row's callbacks as for any notification, and one for the batch, signed the same.
    got = wait_for(
        lambda: sandbox.receiver.for_notification(batch_id) or None,
        what="the batch's callback",
    )
    batch_calls = [r for r in got if json.loads(r.body).get("id") == batch_id]
    assert len(batch_calls) == 1
    body = json.loads(batch_calls[0].body)
    # The batch as it was when the callback went out: done, its receipts perhaps not all in.
    assert (body["status"], body["total"], sum(body["counts"].values())) == ("done", 3, 3)
    assert body["counts"]["failed"] == 1
    headers_seen = {k.lower(): v for k, v in batch_calls[0].headers.items()}
    assert headers_seen["webhook-id"] == f"msg_batch_{batch_id}"
    page = requests.get(
        f"{base}/v1/batches/{batch_id}/notifications", headers=headers, timeout=10
    ).json()
    failed = next(i["id"] for i in page["items"] if i["status"] == "failed")
    # The row's own callback is a task of its own: it may come before the batch's, or after.
    wait_for(lambda: sandbox.receiver.for_notification(failed), what="the failed row's callback")
    assert len(sandbox.smtp.handler.messages) == messages_before
