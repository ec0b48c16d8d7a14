"""Notifications kept in Redis: a status record, the payload to send, its claims, receipts and
the schedule (the keys are listed in :mod:`.keys`).

The store is one object to its callers (``runtime.store``), made of one part a concern, each a
module here: :mod:`.records` (store, read, forget), :mod:`.claims` (an attempt's claim and
outcome), :mod:`.receipts` (delivery receipts and their early-arrival buffer), :mod:`.cancels`,
:mod:`.schedule` (due members and the open index), on :mod:`.base` (the state they share and the
callbacks a status change queues). The parts are classes the store inherits rather than objects
it holds because they are one store: one Redis, one retention, one callback queue; and the
callers' ``store.claim(...)`` reads as what it is. Each part's scripts are under
``notifier/stores/lua/notifications/``.
"""

from __future__ import annotations

from notifier.stores.notifications.cancels import Cancels
from notifier.stores.notifications.claims import Claim, Claims
from notifier.stores.notifications.keys import (
    CALLBACK_STATUSES,
    DISPATCHED_AT,
    FINAL,
    METRICS,
    OPEN_STATUSES,
    RECEIPT_STATUSES,
    dispatched_at_keys,
    metrics_key,
    metrics_keys,
    payload_key,
    record_key,
)
from notifier.stores.notifications.receipts import EARLY_RECEIPT_TTL
from notifier.stores.notifications.records import SHOWN_KIND, Records, record_fields

__all__ = [
    "CALLBACK_STATUSES", "DISPATCHED_AT", "EARLY_RECEIPT_TTL", "FINAL", "METRICS",
    "OPEN_STATUSES", "RECEIPT_STATUSES", "SHOWN_KIND", "Claim", "NotificationStore",
    "dispatched_at_keys", "metrics_key", "metrics_keys", "payload_key", "record_fields",
    "record_key",
]  # fmt: skip


class NotificationStore(Records, Claims, Cancels):
    """Create, read and move notifications in Redis."""
