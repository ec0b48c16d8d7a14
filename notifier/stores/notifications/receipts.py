"""Delivery receipts: a provider's word that a sent message was delivered, or not.

A receipt finds its notification by the provider's message id: ``notifier:ref:<provider>:<ref>``
holds the notification id, written when the send is recorded. It may come before that (a fast
provider, a slow settle): it is then kept under ``notifier:receipt:<provider>:<ref>`` (its
error masked, as the record keeps it) for :data:`EARLY_RECEIPT_TTL` seconds and applied by the
settle that records the send. Each side writes its key, then reads the other's, so one at least
sees the other.
"""

from __future__ import annotations

import json
import time
from typing import cast

from redis.typing import EncodableT

from notifier.redact import redact
from notifier.stores.notifications.base import StoreBase, list_of
from notifier.stores.notifications.keys import (
    OPEN_STATUSES,
    RECEIPT_STATUSES,
    metrics_key,
    record_key,
)
from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339

# A receipt that comes before its send was recorded waits this long for it.
EARLY_RECEIPT_TTL = 3600


def ref_key(provider: str, ref: str) -> str:
    """The notification a provider's message id belongs to."""
    return f"notifier:ref:{provider}:{ref}"


def early_receipt_key(provider: str, ref: str) -> str:
    """A receipt that came before its send was recorded."""
    return f"notifier:receipt:{provider}:{ref}"


class Receipts(StoreBase):
    """Apply receipts, early or not."""

    _receipt = Lua("notifications/receipt")
    _soft_bounce = Lua("notifications/soft_bounce")

    def soft_bounce(self, notification_id: str, status: str, diagnostic: str) -> bool:
        """Note a soft bounce on the record, shown as its ``soft_bounce`` until the next one
        (its status does not move); False when there is no record."""
        noted = json.dumps(
            {"status": status, "diagnostic": redact(diagnostic), "at": rfc3339(time.time())}
        )
        return bool(self._soft_bounce(keys=[record_key(notification_id)], args=[noted]))

    def receipt(
        self, provider: str, provider_ref: str, status: str, *, error: str | None = None
    ) -> str:
        """Apply a provider's delivery receipt (``delivered`` or ``undelivered``).

        What it came to: ``moved``; ``early`` (the send is not recorded yet: kept, and applied
        when it is); ``unknown`` (no such message here, or too long ago); or the status that
        leaves nothing to move (``delivered`` twice, ``sent`` never moves back).
        """
        if status not in RECEIPT_STATUSES:
            raise ValueError(f"not a receipt status: {status!r}")
        found = cast(str | None, self.redis.get(ref_key(provider, provider_ref)))
        if found is None:
            early = early_receipt_key(provider, provider_ref)
            self.redis.set(early, f"{status}|{redact(error or '')}", ex=EARLY_RECEIPT_TTL)
            # The send may have been recorded in between: look once more.
            found = cast(str | None, self.redis.get(ref_key(provider, provider_ref)))
            if found is None:
                return "early"
        callback = self._callback(found, status)
        keys = [record_key(found), metrics_key(found), *list_of(callback)]
        args: list[EncodableT] = [
            status, redact(error or ""), rfc3339(time.time()), self.ttl, provider,
            callback[1] if callback else "", self._callback_clients,
        ]  # fmt: skip
        outcome, due = self._receipt(keys=keys, args=args)
        early = early_receipt_key(provider, provider_ref)
        if outcome in OPEN_STATUSES:
            # Indexed, but its send not recorded yet (the settle is under way): kept for the
            # settle to apply, then tried once more in case it came in between.
            self.redis.set(early, f"{status}|{redact(error or '')}", ex=EARLY_RECEIPT_TTL)
            outcome, due = self._receipt(keys=keys, args=args)
            if outcome in OPEN_STATUSES:
                return "early"
        self.redis.delete(early)
        self._publish_if_due(found, status, callback, due)
        return "unknown" if outcome == "missing" else str(outcome)
