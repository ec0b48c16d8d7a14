"""``send_callback``: tell a client's service a notification's status; retried for 24 hours."""

from __future__ import annotations

import logging
import time

from celery import Task, shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.callbacks import RETRY_FOR, Event, deliver_callback, subject
from notifier.tasks.retrying import retry_with_backoff

log = logging.getLogger(__name__)


@shared_task(name=TaskNames.SEND_CALLBACK, bind=True, max_retries=None)
def send_callback(
    self: Task[[str, str, str, int], None],
    notification_id: str,
    status: str,
    webhook_id: str,
    timestamp: int,
) -> None:
    """POST the event; on a timeout, a connection error or a non-2xx answer, retry later."""
    rt = runtime()
    event = Event(notification_id, status, webhook_id, timestamp)
    found = subject(event, store=rt.store, batches=rt.batches)
    client, body = (rt.client_named(found[0]), found[1]) if found else (None, None)
    outcome = deliver_callback(
        event, store=rt.store, body=body, client=client, sender=rt.callback_sender
    )
    if outcome != "retry":
        return
    if time.time() - timestamp > RETRY_FOR:
        log.error("%s: callback given up after 24 h", notification_id)
        rt.store.count("callbacks:failed")
        return
    raise retry_with_backoff(self, rt.settings)
