"""``dispatch_due``: beat runs it every second to queue the scheduled notifications now due."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from notifier.runtime import runtime
from notifier.tasks.mail import enqueue_mail

log = logging.getLogger(__name__)
# A leased id that was not queued within this many seconds (its dispatcher died) comes due again.
LEASE = 60.0


@shared_task(name="dispatch_due")
def dispatch_due() -> int:
    """Queue every due scheduled notification; how many were queued."""
    store = runtime().store
    due = store.lease_due(now=time.time(), lease=LEASE)
    for notification_id in due:
        enqueue_mail(notification_id)
        store.dispatched(notification_id)
    if due:
        log.info("dispatched %d scheduled notifications", len(due))
    return len(due)
