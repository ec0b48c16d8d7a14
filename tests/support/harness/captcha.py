"""Helpers of the captcha tests: a phone, a queue that keeps nothing, acceptance, the spellings
of one Gmail mailbox."""

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


def gmail_spellings(name: str, count: int) -> list[str]:
    """``count`` spellings of the Gmail mailbox ``name`` (letters and digits): dots in other
    places and, every other one, ``googlemail.com``; the first is ``name`` itself."""
    gaps = len(name) - 1
    assert count <= 2**gaps, "name too short for so many spellings"
    spellings = []
    for n in range(count):
        local = "".join(c + ("." if n >> i & 1 else "") for i, c in enumerate(name[:-1]))
        domain = "googlemail.com" if n % 2 else "gmail.com"
        spellings.append(f"{local}{name[-1]}@{domain}")
    return spellings
