"""``send_sms_captcha`` and ``send_mail_captcha``: make and send one captcha; the message carries
only its id."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task, signals

from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.captcha import EXPIRED, deliver_captcha, deliver_mail_captcha
from notifier.tasks.retrying import deliver

CAPTCHA_TASKS = (TaskNames.SEND_SMS_CAPTCHA, TaskNames.SEND_MAIL_CAPTCHA)


@shared_task(name=TaskNames.SEND_SMS_CAPTCHA, bind=True, max_retries=None)
def send_sms_captcha(self: Task[[str], None], notification_id: str) -> None:
    """Try every SMS provider in order; when all fail, retry after a backoff (before expiry)."""
    deliver(self, deliver_captcha, notification_id)


@shared_task(name=TaskNames.SEND_MAIL_CAPTCHA, bind=True, max_retries=None)
def send_mail_captcha(self: Task[[str], None], notification_id: str) -> None:
    """Mail a code; on a transient failure retry after a backoff (before expiry)."""
    deliver(self, deliver_mail_captcha, notification_id)


@signals.task_revoked.connect
def _expired(sender: Any = None, request: Any = None, expired: bool = False, **kwargs: Any) -> None:
    """A captcha message that expired unrun still gets its final status, if its record waits
    for an attempt: one under way (a copy of this message) settles it, or the sweep does."""
    if not (expired and request is not None and request.task in CAPTCHA_TASKS):
        return
    # The worker revokes an expired message outside any task: enter the app to reach Redis.
    with sender.flask_app.app_context():
        runtime().store.settle(
            request.args[0], "failed", provider=None, error=EXPIRED, only_if_waiting=True
        )
