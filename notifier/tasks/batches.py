"""``fan_out_batch``: make a stored batch's rows into notifications, on the ``batch`` lane."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.batches import fan_out
from notifier.tasks.retrying import retry_with_backoff

log = logging.getLogger(__name__)


@shared_task(name=TaskNames.FAN_OUT_BATCH, bind=True, max_retries=None)
def fan_out_batch(self: Task[[str], None], batch_id: str) -> None:
    """Fan a few chunks of the batch out, then queue the next run if rows are left.

    The message is acknowledged after the run, as every task's: a worker that dies half-way
    leaves it to another, which goes on from the last whole chunk. An error (Redis away) is
    retried with backoff, never dropped: the batch would stay queued for ever.
    """
    rt = runtime()
    try:
        if fan_out(batch_id, store=rt.batches, queues=rt.row_queue_of):
            rt.fan_out_queue.publish(batch_id)
    except Exception as e:
        log.warning("batch %s fan-out failed, retrying: %s", batch_id, type(e).__name__)
        raise retry_with_backoff(self, rt.settings) from e
