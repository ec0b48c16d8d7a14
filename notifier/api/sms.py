"""``POST /v1/sms``: an SMS notification, free text or a named SMS."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from notifier.api.body import parse
from notifier.api.responses import accepted, sending
from notifier.queueing import Note
from notifier.runtime import runtime
from notifier.schemas import SmsRequest
from notifier.services.sms import accept_sms

bp = Blueprint("sms", __name__)


@bp.post("/sms")
@sending("sms", SmsRequest)
def send_sms(note: Note | None) -> Response:
    """Send an SMS (now, or at send_at): free text, or a named SMS rendered with data."""
    rt = runtime()
    record = accept_sms(
        parse(SmsRequest), store=rt.store, queue=rt.sms_queue, note=note, **sms_options()
    )
    return accepted(record)


def sms_options() -> dict[str, Any]:
    """What accepting an SMS (or an SMS batch) takes of the calling client and the runtime."""
    rt = runtime()
    client = g.client
    return {
        "client": client.client,
        "senders": client.sms_sender,
        "test": client.mode == "test",
        "policy": rt.captcha_policy,
        "templates": rt.named_sms,
        "route": rt.sms_providers_for,
    }
