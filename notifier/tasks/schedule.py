"""``dispatch_due``: beat runs it every second to queue the scheduled notifications now due."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime

log = logging.getLogger(__name__)
# A leased id that was not queued within this many seconds (its dispatcher died) comes due again.
LEASE = 60.0


@shared_task(name=TaskNames.DISPATCH_DUE)
def dispatch_due() -> int:
    """Queue every due scheduled notification; how many were queued."""
    rt = runtime()
    due = rt.store.lease_due(now=time.time(), lease=LEASE)
    for notification_id in due:
        # The API's publish path: a due mail's message is the one an unscheduled mail gets.
        rt.mail_queue.publish(notification_id)
        rt.store.dispatched(notification_id)
    if due:
        log.info("dispatched %d scheduled notifications", len(due))
    return len(due)
