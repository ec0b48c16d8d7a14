"""Delivery receipts: a provider says a message it took was delivered, or not."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from notifier.stores.notifications import NotificationStore

log = logging.getLogger(__name__)

# Twilio's MessageStatus values that end a message's life; the others (queued, sending, sent,
# accepted, scheduled, …) are on the way there and change nothing of ours.
TWILIO_FINAL = {"delivered": "delivered", "undelivered": "undelivered", "failed": "undelivered"}


def twilio_receipt(form: Mapping[str, str], *, store: NotificationStore) -> str:
    """Apply one of Twilio's status callbacks; what it came to (see ``store.receipt``)."""
    sid, reported = form.get("MessageSid", ""), form.get("MessageStatus", "")
    status = TWILIO_FINAL.get(reported)
    if not sid or status is None:
        return "ignored"
    code = form.get("ErrorCode")
    error = f"Twilio error {code}" if code and status == "undelivered" else None
    outcome = store.receipt("twilio", sid, status, error=error)
    if outcome == "unknown":
        # Not ours, or long gone: Twilio retries anything but a 200, so it gets one.
        log.info("receipt for an unknown Twilio message %s ignored", sid)
    else:
        log.info("receipt %s for Twilio message %s: %s", reported, sid, outcome)
    return outcome
