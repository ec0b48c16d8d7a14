"""``send_sms_captcha``: make and send one captcha; the message carries only its id."""

from __future__ import annotations

from celery import Task, shared_task

from notifier.runtime import runtime
from notifier.services.captcha import deliver_captcha
from notifier.tasks.retrying import retry_if_asked


@shared_task(name="send_sms_captcha", bind=True, max_retries=None)
def send_sms_captcha(self: Task[[str], None], notification_id: str) -> None:
    """Try every SMS provider in order; when all fail, retry after a backoff (before expiry)."""
    rt = runtime()
    outcome = deliver_captcha(
        notification_id,
        store=rt.store,
        captchas=rt.captchas,
        providers=rt.sms_providers,
        templates=rt.sms_templates,
        policy=rt.captcha_policy,
        max_attempts=rt.settings.retry_max,
    )
    retry_if_asked(self, outcome, rt.settings)


def enqueue_captcha(notification_id: str) -> None:
    """Put a stored captcha on the queue (raises when the broker cannot be reached)."""
    send_sms_captcha.apply_async(args=(notification_id,))
