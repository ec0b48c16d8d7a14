"""The captcha routes, by SMS and by mail: ``POST /v1/sms/captcha``, ``/v1/sms/captcha/verify``,
``/v1/mail/captcha`` and ``/v1/mail/captcha/verify``; one lifecycle, two channels."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from notifier.api.auth import requires
from notifier.api.body import parse
from notifier.api.openapi import operation
from notifier.api.responses import accepted, sending, stored_notification
from notifier.queueing import Enqueuer, Note
from notifier.runtime import runtime
from notifier.schemas import (
    CaptchaAccepted,
    CaptchaRequest,
    MailCaptchaRequest,
    MailVerifyRequest,
    VerifyRequest,
    VerifyResult,
)
from notifier.services.captcha import MAIL, SMS, CaptchaAsk, CaptchaCheck, Channel
from notifier.services.captcha import accept_captcha as accept
from notifier.services.captcha import verify_captcha as check

bp = Blueprint("captcha", __name__)


def _lifetimes() -> dict[str, int]:
    """What a captcha's 202 adds: how long the code lives and when another may be asked for."""
    policy = runtime().captcha_policy
    return {"expires_in": policy.ttl, "resend_after": policy.resend_interval}


_replay = stored_notification(CaptchaAccepted, _lifetimes)


@bp.post("/sms/captcha")
@sending("sms", CaptchaRequest, CaptchaAccepted, _replay)
def send_captcha(note: Note | None) -> Response:
    """Send an SMS captcha code; 429 with Retry-After when a limit refuses it."""
    return _send(parse(CaptchaRequest), SMS, runtime().captcha_queue, note)


@bp.post("/sms/captcha/verify")
@operation((200, VerifyResult), body=VerifyRequest, errors=(503,))
@requires("sms")
def verify() -> Response:
    """Check an SMS captcha code the user typed; a code is good once."""
    return _verify(parse(VerifyRequest), SMS)


@bp.post("/mail/captcha")
@sending("mail", MailCaptchaRequest, CaptchaAccepted, _replay)
def send_mail_captcha(note: Note | None) -> Response:
    """Mail a captcha code; 429 with Retry-After when a limit refuses it."""
    return _send(parse(MailCaptchaRequest), MAIL, runtime().mail_captcha_queue, note)


@bp.post("/mail/captcha/verify")
@operation((200, VerifyResult), body=MailVerifyRequest, errors=(503,))
@requires("mail")
def verify_mail_captcha() -> Response:
    """Check a mailed captcha code the user typed; a code is good once."""
    return _verify(parse(MailVerifyRequest), MAIL)


def _send(request: CaptchaAsk, channel: Channel, queue: Enqueuer, note: Note | None) -> Response:
    rt = runtime()
    record = accept(
        request, channel=channel, client=g.client.client, test=g.client.mode == "test",
        policy=rt.captcha_policy, store=rt.store, captchas=rt.captchas, queue=queue, note=note,
    )  # fmt: skip
    return accepted(record, CaptchaAccepted, **_lifetimes())


def _verify(request: CaptchaCheck, channel: Channel) -> Response:
    rt = runtime()
    verdict = check(
        request, channel=channel, client=g.client.client, policy=rt.captcha_policy,
        captchas=rt.captchas, store=rt.store, test=g.client.mode == "test",
    )  # fmt: skip
    result = VerifyResult(
        valid=verdict.valid, reason=verdict.reason, attempts_left=verdict.attempts_left
    )
    return jsonify(result.model_dump(exclude_none=True))
