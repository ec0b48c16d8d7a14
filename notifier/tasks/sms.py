"""``send_sms_captcha``: make and send one captcha; the message carries only its id."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import Task, shared_task, signals

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.captcha import EXPIRED, deliver_captcha
from notifier.tasks.retrying import run_attempt


@shared_task(name=TaskNames.SEND_SMS_CAPTCHA, bind=True, max_retries=None)
def send_sms_captcha(self: Task[[str], None], notification_id: str) -> None:
    """Try every SMS provider in order; when all fail, retry after a backoff (before expiry)."""
    rt = runtime()
    attempt = partial(
        deliver_captcha,
        notification_id,
        store=rt.store,
        captchas=rt.captchas,
        providers=rt.sms_providers_for,
        templates=rt.sms_templates,
        policy=rt.captcha_policy,
        max_attempts=rt.settings.retry_max,
        lease=rt.settings.task_time_limit,
    )
    run_attempt(self, attempt, rt.settings)


@signals.task_revoked.connect
def _expired(sender: Any = None, request: Any = None, expired: bool = False, **kwargs: Any) -> None:
    """A captcha message that expired unrun still gets its final status."""
    if not (expired and request is not None and request.task == TaskNames.SEND_SMS_CAPTCHA):
        return
    # The worker revokes an expired message outside any task: enter the app to reach Redis.
    with sender.flask_app.app_context():
        runtime().store.settle(
            request.args[0], "failed", provider=None, error=EXPIRED, only_if_open=True
        )
