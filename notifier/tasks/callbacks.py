"""``send_callback``: tell a client's service a notification's status; retried for 24 hours."""

from __future__ import annotations

import logging
import time

from celery import Task, shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.callbacks import RETRY_FOR, Event, Held, attempt_callback
from notifier.tasks.retrying import backoff, retry_in

log = logging.getLogger(__name__)


@shared_task(name=TaskNames.SEND_CALLBACK, bind=True, max_retries=None)
def send_callback(
    self: Task[[str, str, str, int, int], None],
    notification_id: str,
    status: str,
    webhook_id: str,
    timestamp: int,
    deferred: int = 0,
) -> None:
    """POST the event; on a timeout, a connection error or a non-2xx answer, retry later.

    A callback that may not go now (no free slot, or its receiver held) is put back for later
    with ``deferred`` one more: the wait holds no thread, and counts as no attempt.
    """
    rt = runtime()
    event = Event(notification_id, status, webhook_id, timestamp)
    # The wait before a retry, drawn now so the timeline can say when it comes.
    attempts = self.request.retries - deferred + 1
    delay = backoff(attempts, base=rt.settings.retry_base, cap=rt.settings.retry_cap)
    now = time.time()
    retry_at = None if now - timestamp > RETRY_FOR else now + delay
    try:
        outcome = attempt_callback(
            event,
            deferred=deferred,
            store=rt.store,
            batches=rt.batches,
            client_named=rt.client_named,
            sender=rt.callback_sender,
            gate=rt.callback_gate,
            retry_at=retry_at,
        )
    except Exception:
        # Redis went away mid-way: the callback comes back after a backoff all the same.
        log.exception("%s: the callback could not be attempted; retrying", notification_id)
        outcome = "retry"
    if outcome in ("sent", "dropped"):
        return
    if time.time() - timestamp > RETRY_FOR:
        log.error("%s: callback given up after 24 h", notification_id)
        rt.store.count("callbacks:failed")
        return
    if isinstance(outcome, Held):
        rt.store.count("callbacks:held")
        raise retry_in(self, outcome.seconds, rt.settings, kwargs={"deferred": deferred + 1})
    raise retry_in(self, delay, rt.settings)
