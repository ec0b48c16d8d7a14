"""``fan_out_batch``: make a stored batch's rows into notifications, on the ``batch`` lane."""

from __future__ import annotations

from celery import shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.batches import fan_out


@shared_task(name=TaskNames.FAN_OUT_BATCH)
def fan_out_batch(batch_id: str) -> int:
    """Fan the batch out; how many rows this run made. Its message is acknowledged late, as
    every task's: a worker that dies half-way leaves it to another, which goes on from there."""
    rt = runtime()
    return fan_out(batch_id, store=rt.batches, rows=rt.row_queue)
