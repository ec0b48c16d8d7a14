"""``POST /v1/sms/captcha`` and ``POST /v1/sms/captcha/verify``."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from notifier.api.auth import rate_limited, requires
from notifier.api.body import parse
from notifier.api.idempotency import idempotent
from notifier.api.openapi import operation
from notifier.api.responses import accepted
from notifier.runtime import runtime
from notifier.schemas import CaptchaAccepted, CaptchaRequest, VerifyRequest, VerifyResult
from notifier.services.captcha import accept_captcha, verify_captcha

bp = Blueprint("sms", __name__)


@bp.post("/sms/captcha")
@operation((202, CaptchaAccepted), body=CaptchaRequest)
@requires("sms")
@rate_limited
@idempotent
def send_captcha() -> Response:
    """Send an SMS captcha code; 429 with Retry-After when a limit refuses it."""
    rt = runtime()
    policy = rt.captcha_policy
    record = accept_captcha(
        parse(CaptchaRequest),
        client=g.client.client,
        test=g.client.mode == "test",
        policy=policy,
        store=rt.store,
        captchas=rt.captchas,
        queue=rt.captcha_queue,
    )
    return accepted(
        record, CaptchaAccepted, expires_in=policy.ttl, resend_after=policy.resend_interval
    )


@bp.post("/sms/captcha/verify")
@operation((200, VerifyResult), body=VerifyRequest, errors=(503,))
@requires("sms")
def verify() -> Response:
    """Check a captcha code the user typed; a code is good once."""
    rt = runtime()
    verdict = verify_captcha(
        parse(VerifyRequest), client=g.client.client, policy=rt.captcha_policy,
        captchas=rt.captchas, store=rt.store, test=g.client.mode == "test",
    )  # fmt: skip
    result = VerifyResult(
        valid=verdict.valid, reason=verdict.reason, attempts_left=verdict.attempts_left
    )
    return jsonify(result.model_dump(exclude_none=True))
