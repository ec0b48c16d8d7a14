"""``send_sms``: deliver one stored SMS notification; the message carries only its id."""

from __future__ import annotations

from celery import Task, shared_task

from notifier.lanes import TaskNames
from notifier.services.sms import deliver_sms
from notifier.tasks.retrying import deliver


@shared_task(name=TaskNames.SEND_SMS, bind=True, max_retries=None)
def send_sms(self: Task[[str], None], notification_id: str) -> None:
    """Try to deliver; on a transient failure ask Celery to run this again after a backoff."""
    deliver(self, deliver_sms, notification_id)
