"""notifier_client.verify_webhook takes what the service signs and what the reference
implementation (the standardwebhooks package) signs, and refuses anything else."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import notifier_client as nc
import pytest
from standardwebhooks.webhooks import Webhook

from notifier.schemas import Complaint, Notification, SoftBounce
from notifier.webhooks import new_webhook_id, secret_key, signed_headers

SECRET = "whsec_" + base64.b64encode(b"the client's callback secret....").decode()
SHORT = "whsec_" + base64.b64encode(b"15 bytes of key").decode()  # the service refuses it
RECORD = {
    "id": "n-1", "kind": "mail", "status": "delivered", "attempts": 1, "provider": "smtp",
    "error": None, "created_at": "2026-11-22T03:00:00.000Z",
    "updated_at": "2026-11-22T03:00:02.000Z", "send_at": None, "reference": "order-42",
    "provider_ref": "<m@example.com>",
}  # fmt: skip


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """The headers the service sends with ``body``."""
    stamp = int(time.time()) if at is None else at
    return signed_headers(secret_key(secret), new_webhook_id(), stamp, body)


def test_a_callback_the_service_signed_verifies_into_its_record() -> None:
    body = json.dumps(RECORD).encode()
    record = nc.verify_webhook(SECRET, signed(body), body)
    assert isinstance(record, nc.Notification)
    assert (record.id, record.status, record.reference) == ("n-1", "delivered", "order-42")


def test_a_batchs_callback_is_its_progress() -> None:
    batch = {
        "id": "b-1", "status": "done", "total": 2, "counts": {"sent": 2}, "reference": None,
        "created_at": "2026-11-22T03:00:00Z", "updated_at": "2026-11-22T03:00:05Z",
        "send_at": None,
    }  # fmt: skip
    body = json.dumps(batch).encode()
    progress = nc.verify_webhook(SECRET, signed(body), body.decode())
    assert isinstance(progress, nc.BatchProgress) and progress.counts == {"sent": 2}


def test_what_the_reference_implementation_signs_verifies_and_the_other_way_round() -> None:
    body = json.dumps(RECORD)
    webhook_id, now = new_webhook_id(), datetime.now(UTC).replace(microsecond=0)
    headers = {
        "Webhook-Id": webhook_id,  # header names in any case
        "Webhook-Timestamp": str(int(now.timestamp())),
        # A key being rolled over: the old signature first, then the one that matches.
        "Webhook-Signature": "v1,b2xk " + Webhook(SECRET).sign(webhook_id, now, body),
    }
    assert nc.verify_webhook(SECRET, headers, body) == nc.verify_webhook(
        SECRET, signed(body.encode()), body
    )
    assert Webhook(SECRET).verify(body, signed(body.encode())) == RECORD


@pytest.mark.parametrize(
    "fault", ["tampered body", "other secret", "too old", "in the future", "no signature", "v2"]
)
def test_a_callback_that_does_not_verify_is_refused(fault: str) -> None:
    body = json.dumps(RECORD).encode()
    other = "whsec_" + base64.b64encode(b"somebody else's secret, 32 byte").decode()
    headers = {
        "tampered body": signed(body),
        "other secret": signed(body, secret=other),
        "too old": signed(body, at=int(time.time()) - 301),
        "in the future": signed(body, at=int(time.time()) + 301),
        "no signature": {k: v for k, v in signed(body).items() if k != "webhook-signature"},
        "v2": {**signed(body), "webhook-signature": "v2," + signed(body)["webhook-signature"][3:]},
    }[fault]
    sent = body.replace(b"delivered", b"undelivered") if fault == "tampered body" else body
    with pytest.raises(nc.WebhookVerificationError):
        nc.verify_webhook(SECRET, headers, sent)


def test_the_tolerance_and_the_clock_can_be_given() -> None:
    body = json.dumps(RECORD).encode()
    headers = signed(body, at=1_000_000)
    assert nc.verify_webhook(SECRET, headers, body, now=1_000_299).id == "n-1"
    with pytest.raises(nc.WebhookVerificationError):
        nc.verify_webhook(SECRET, headers, body, now=1_000_299, tolerance=60)


@pytest.mark.parametrize("secret", ["", "whsec_", SHORT])
def test_a_secret_of_fewer_than_16_bytes_of_key_verifies_nothing(secret: str) -> None:
    """An empty secret (a variable that is not set) would let anybody sign: with the empty key
    a forger signs with, the callback is refused all the same, as the service refuses the key."""
    body = json.dumps(RECORD).encode()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    forged = signed_headers(key, new_webhook_id(), int(time.time()), body)
    with pytest.raises(nc.WebhookVerificationError, match="fewer than 16"):
        nc.verify_webhook(secret, forged, body)
    with pytest.raises(ValueError):
        secret_key(secret)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-signature", "v1,\xe9t\xe9"),
        ("webhook-timestamp", "9" * 400),
    ],
)
def test_a_malformed_header_is_a_verification_error_not_a_crash(header: str, value: str) -> None:
    """What an unauthenticated sender puts in the headers is refused (a receiver's 400), never a
    TypeError or OverflowError (its 500)."""
    body = json.dumps(RECORD).encode()
    with pytest.raises(nc.WebhookVerificationError):
        nc.verify_webhook(SECRET, {**signed(body), header: value}, body)


def test_a_mails_soft_bounce_and_complaint_come_through_as_records() -> None:
    """What the service's record shows of a mail's last deferral and first complaint is read
    into the client's record, timestamps parsed."""
    record = Notification(
        id="n-2", client="shop", kind="mail", status="delivered", attempts=1, provider="ses",
        error=None, created_at="2026-11-22T03:00:00.000Z", updated_at="2026-11-22T03:00:09.000Z",
        send_at=None, reference=None, provider_ref="0100-ses",
        soft_bounce=SoftBounce(status="4.2.2", diagnostic="mailbox full", at="2026-11-22T03:00:05.000Z"),
        complaint=Complaint(type="abuse", at="2026-11-22T03:00:09.000Z"),
    ).public()  # fmt: skip
    body = json.dumps(record).encode()
    got = nc.verify_webhook(SECRET, signed(body), body)
    assert isinstance(got, nc.Notification)
    assert got.complaint == nc.Complaint("abuse", datetime(2026, 11, 22, 3, 0, 9, tzinfo=UTC))
    assert got.soft_bounce is not None and got.soft_bounce.status == "4.2.2"
    assert got.soft_bounce.at == datetime(2026, 11, 22, 3, 0, 5, tzinfo=UTC)
    plain = nc.verify_webhook(SECRET, signed(json.dumps(RECORD).encode()), json.dumps(RECORD))
    assert isinstance(plain, nc.Notification)
    assert (plain.soft_bounce, plain.complaint) == (None, None)
