"""Accept a mail (validate, render, store, enqueue) and deliver it (claim, send, settle)."""

from __future__ import annotations

import logging
import time

from notifier.errors import (
    FieldError,
    PermanentProviderError,
    TemplateError,
    TransientProviderError,
    Unprocessable,
)
from notifier.providers.base import MailProvider, OutgoingMail
from notifier.providers.simulated import mail_outcome
from notifier.schemas import HEADER_BREAKS, MAX_RECIPIENTS, ONE_LINE, MailRequest, Notification
from notifier.services.delivery import (
    Attempt,
    Enqueuer,
    Outcome,
    attempt_delivery,
    failed_attempt,
    failed_for_good,
    sent,
    simulated,
    store_and_queue,
)
from notifier.stores.notifications import NotificationStore
from notifier.templating import MailTemplates

log = logging.getLogger(__name__)
KIND = "mail"


def accept_mail(
    request: MailRequest,
    *,
    client: str,
    sender: str,
    store: NotificationStore,
    templates: MailTemplates,
    queue: Enqueuer,
    test: bool = False,
) -> Notification:
    """Check and render a mail request, store it, and queue it unless it is scheduled for later."""
    recipients = len(request.to) + len(request.cc) + len(request.bcc)
    if not 1 <= recipients <= MAX_RECIPIENTS:
        raise Unprocessable(
            "a mail needs recipients",
            errors=[
                FieldError(
                    ("body", "to"), f"1 to {MAX_RECIPIENTS} recipients in all of to, cc and bcc"
                )
            ],
        )
    subject, text, html = request.subject, request.text, request.html
    if request.template is not None:
        # What the request gives itself wins over the template's part.
        try:
            rendered = templates.render(request.template, request.data)
        except TemplateError as e:
            raise Unprocessable(
                e.detail, errors=[FieldError(("body", e.field), e.reason)]
            ) from None
        subject = subject or rendered.subject
        text = text if text is not None else rendered.text
        html = html if html is not None else rendered.html
    elif text is None and html is None:
        raise Unprocessable(
            "a mail needs content",
            errors=[FieldError(("body", "text"), "give at least one of text, html, template")],
        )
    _check_subject(subject)
    payload = {
        "sender": sender,
        "to": request.to,
        "cc": request.cc,
        "bcc": request.bcc,
        "reply_to": request.reply_to,
        "subject": subject,
        "text": text,
        "html": html,
    }
    send_at = request.send_at.timestamp() if request.send_at else None
    if send_at is not None and send_at <= time.time():
        send_at = None  # due already: send now
    return store_and_queue(
        store, queue, client=client, kind=KIND, payload=payload, send_at=send_at,
        reference=request.reference, test=test,
    )  # fmt: skip


def _check_subject(subject: str | None) -> None:
    loc = ("body", "subject")
    if not subject:
        raise Unprocessable("a mail needs a subject", errors=[FieldError(loc, "field required")])
    # Checked again here: a template's subject is rendered from data the schema never saw.
    if HEADER_BREAKS.search(subject) or len(subject) > 998:
        raise Unprocessable(
            "the subject is not one header line",
            errors=[FieldError(loc, f"1 to 998 characters on {ONE_LINE}")],
        )


def deliver_mail(
    notification_id: str,
    *,
    store: NotificationStore,
    provider: MailProvider,
    max_attempts: int,
    lease: float = 300.0,
) -> Outcome:
    """Make one delivery attempt and record its outcome in the status record."""

    def send(claimed: Attempt) -> Outcome:
        payload = claimed.payload
        if payload.get("test"):
            recipients = [*payload["to"], *payload["cc"], *payload["bcc"]]
            return simulated(
                store, notification_id, claimed.attempt, mail_outcome(recipients),
                max_attempts=max_attempts,
            )  # fmt: skip
        message = OutgoingMail(
            notification_id=notification_id,
            sender=payload["sender"],
            to=tuple(payload["to"]),
            cc=tuple(payload["cc"]),
            bcc=tuple(payload["bcc"]),
            reply_to=payload["reply_to"],
            subject=payload["subject"],
            text=payload["text"],
            html=payload["html"],
        )
        try:
            ref = provider.send_mail(message=message)
        except PermanentProviderError as e:
            return failed_for_good(store, notification_id, claimed.attempt, e)
        except TransientProviderError as e:
            return failed_attempt(
                store,
                notification_id,
                claimed.attempt,
                max_attempts=max_attempts,
                error=str(e),
                provider=e.provider,
            )
        return sent(store, notification_id, claimed.attempt, provider.name, ref)

    return attempt_delivery(
        store, notification_id, lease=lease, max_attempts=max_attempts, send=send
    )
