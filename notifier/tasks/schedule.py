"""``dispatch_due``: beat runs it every second to queue what is due: scheduled notifications,
scheduled batches' fan-outs, and finished batches' callbacks."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.callbacks import BATCH_EVENT
from notifier.stores.batch_counts import DONE_MEMBER, FAN_OUT_MEMBER

log = logging.getLogger(__name__)
# A leased id that was not queued within this many seconds (its dispatcher died) comes due again.
LEASE = 60.0


@shared_task(name=TaskNames.DISPATCH_DUE)
def dispatch_due() -> int:
    """Queue every due scheduled notification; how many were queued."""
    rt = runtime()
    due = rt.store.lease_due(now=time.time(), lease=LEASE)
    for member in due:
        if member.startswith(FAN_OUT_MEMBER):
            rt.fan_out_queue.publish(member.removeprefix(FAN_OUT_MEMBER))
        elif member.startswith(DONE_MEMBER):
            # The same webhook id however often this runs: the client can tell a repeat.
            batch_id = member.removeprefix(DONE_MEMBER)
            rt.callback_queue.publish(
                BATCH_EVENT + batch_id, "done", f"msg_batch_{batch_id}", int(time.time())
            )
        else:
            # The API's publish path: a due mail's message is the one an unscheduled mail gets.
            rt.mail_queue.publish(member)
        rt.store.dispatched(member)
    if due:
        log.info("dispatched %d scheduled notifications", len(due))
    return len(due)
