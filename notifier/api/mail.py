"""``POST /v1/mail``."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from notifier.api.auth import rate_limited, requires
from notifier.api.body import parse
from notifier.api.idempotency import idempotent
from notifier.runtime import runtime
from notifier.schemas import Accepted, Links, MailRequest
from notifier.services.mail import accept_mail
from notifier.stores.notifications import Notification

bp = Blueprint("mail", __name__)


def accepted(record: Notification, **extra: int) -> Response:
    """The 202 answer to a send, with the status route in ``links`` and ``Location``."""
    link = f"/v1/notifications/{record.id}"
    body = Accepted(id=record.id, status=record.status, links=Links(self=link))  # type: ignore[arg-type]
    response = jsonify({**body.model_dump(), **extra})
    response.status_code = 202
    response.headers["Location"] = link
    return response


@bp.post("/mail")
@requires("mail")
@rate_limited
@idempotent
def send_mail() -> Response:
    """Accept a mail for delivery."""
    rt = runtime()
    record = accept_mail(
        parse(MailRequest),
        client=g.client.client,
        sender=rt.settings.mail_default_sender or "notifier@localhost",
        store=rt.store,
        templates=rt.templates,
        queue=rt.mail_queue,
    )
    return accepted(record)
