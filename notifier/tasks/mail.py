"""``send_mail``: deliver one stored mail; the message carries only its id."""

from __future__ import annotations

from functools import partial

from celery import Task, shared_task

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.mail import deliver_mail
from notifier.tasks.retrying import lane_of, run_attempt


@shared_task(name=TaskNames.SEND_MAIL, bind=True, max_retries=None)
def send_mail(self: Task[[str], None], notification_id: str) -> None:
    """Try to deliver; on a transient failure ask Celery to run this again after a backoff."""
    rt = runtime()
    attempt = partial(
        deliver_mail,
        notification_id,
        store=rt.store,
        provider=rt.mail_provider,
        max_attempts=rt.settings.retry_max,
        lease=rt.settings.task_time_limit,
        lane=lane_of(self),
        expand=rt.row_mails.expand,
        suppressions=rt.suppressions,
        unsubscribe=rt.unsubscribe_url,
        bounces=rt.bounces,
    )
    run_attempt(self, attempt, rt.settings)
