"""Helpers of the captcha service tests: a phone, a queue that keeps nothing, acceptance."""

from __future__ import annotations

from typing import Any

from notifier.runtime import Runtime
from notifier.schemas import CaptchaRequest
from notifier.services.captcha import CaptchaPolicy, accept_captcha

PHONE = "+8613800138000"


class NoQueue:
    """These tests call the delivery themselves: nothing goes on a queue."""

    def direct(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        return None

    def publish(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        pass


def accept(
    rt: Runtime, policy: CaptchaPolicy | None = None, client: str = "tester", **request: Any
) -> str:
    """Accept a login captcha for PHONE (``request`` changes fields) from ``client``; return
    its id."""
    body = CaptchaRequest.model_validate({"phone": PHONE, "purpose": "login", **request})
    record = accept_captcha(
        body,
        client=client,
        policy=policy or rt.captcha_policy,
        store=rt.store,
        captchas=rt.captchas,
        queue=NoQueue(),
    )
    return record.id
