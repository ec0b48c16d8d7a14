"""Verify a status callback the Standard Webhooks way, with the standard library only.

Notifier signs each callback with your ``callback_secret`` (``whsec_`` and base64): the header
``webhook-signature`` holds ``v1,`` and the base64 HMAC-SHA256 of
``"<webhook-id>.<webhook-timestamp>.<body>"``. A callback is genuine when one of its signatures
matches and its timestamp is within ``tolerance`` seconds of now (an old one may be a replay).
The same ``webhook-id`` comes with every retry of one event: drop one you have seen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from notifier_client.errors import WebhookVerificationError
from notifier_client.models import BatchProgress, Notification, decode

TOLERANCE = 300  # seconds, either way


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> Notification | BatchProgress:
    """The callback's record if ``body`` and ``headers`` are signed with ``secret`` and recent;
    WebhookVerificationError otherwise. Pass the body exactly as received, not re-encoded."""
    raw = body.encode() if isinstance(body, str) else body
    found = {name.lower(): value for name, value in headers.items()}
    try:
        webhook_id = found["webhook-id"]
        stamp = found["webhook-timestamp"]
        signatures = found["webhook-signature"]
    except KeyError as e:
        raise WebhookVerificationError(f"no {e.args[0]} header") from None
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    expected = _signature(_key(secret), webhook_id, timestamp, raw)
    offered = (s.partition(",") for s in signatures.split())
    if not any(v == "v1" and hmac.compare_digest(sig, expected) for v, _, sig in offered):
        raise WebhookVerificationError("no signature matches")
    return _record(raw)


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None


def _signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _record(raw: bytes) -> Notification | BatchProgress:
    try:
        data = json.loads(raw)
        # A batch's callback (when it is done) is told from a notification's by its counts.
        if "counts" in data:
            return decode(BatchProgress, data)
        return decode(Notification, data)
    except (ValueError, TypeError, KeyError) as e:
        raise WebhookVerificationError(f"a signed body that is not a callback: {e}") from None
