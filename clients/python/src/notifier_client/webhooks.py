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
import re
import time
from collections.abc import Mapping

from notifier_client.errors import WebhookVerificationError
from notifier_client.models import BatchProgress, Notification, decode

TOLERANCE = 300  # seconds, either way
# What the service takes as a callback secret: a shorter key would be one anybody could guess
# (an empty one is what a secret read from an unset variable gives).
MIN_KEY_BYTES = 16
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits (int() takes more)


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
    if not TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds")
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    expected = _signature(_key(secret), webhook_id, timestamp, raw)
    offered = (s.partition(",") for s in signatures.split())
    # As bytes: compare_digest refuses a str with characters beyond ASCII (a TypeError).
    if not any(v == "v1" and hmac.compare_digest(sig.encode(), expected) for v, _, sig in offered):
        raise WebhookVerificationError("no signature matches")
    return _record(raw)


def _key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None
    if len(key) < MIN_KEY_BYTES:
        # Anyone can sign with an empty key: refuse every callback rather than take forged ones.
        raise WebhookVerificationError(
            f"the secret holds {len(key)} bytes of key, fewer than {MIN_KEY_BYTES}: is it set?"
        )
    return key


def _signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def _record(raw: bytes) -> Notification | BatchProgress:
    try:
        data = json.loads(raw)
        # A batch's callback (when it is done) is told from a notification's by its counts.
        if "counts" in data:
            return decode(BatchProgress, data)
        return decode(Notification, data)
    except (ValueError, TypeError, KeyError) as e:
        raise WebhookVerificationError(f"a signed body that is not a callback: {e}") from None
