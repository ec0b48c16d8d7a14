"""``POST /v1/mail``."""

from __future__ import annotations

from flask import Blueprint, Response, g

from notifier.api.body import parse
from notifier.api.responses import accepted, sending
from notifier.queueing import Note
from notifier.runtime import runtime
from notifier.schemas import MailRequest
from notifier.services.mail import accept_mail

bp = Blueprint("mail", __name__)


@bp.post("/mail")
@sending("mail", MailRequest, guarded=True)
def send_mail(note: Note | None) -> Response:
    """Send a mail (now, or at send_at)."""
    rt = runtime()
    record = accept_mail(
        parse(MailRequest),
        client=g.client.client,
        test=g.client.mode == "test",
        sender=rt.mail_sender,
        store=rt.store,
        templates=rt.templates,
        queue=rt.mail_queue,
        note=note,
    )
    return accepted(record)
