"""Accept a mail (validate, render, store, enqueue) and deliver it (claim, send, settle)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from notifier import tracing
from notifier.errors import (
    PermanentProviderError,
    Refused,
    TemplateError,
    TransientProviderError,
)
from notifier.providers.base import MailProvider, OutgoingMail
from notifier.providers.simulated import mail_outcome
from notifier.queueing import Enqueuer, Note
from notifier.schemas import HEADER_BREAKS, MAX_RECIPIENTS, ONE_LINE, MailRequest, Notification
from notifier.services.bounces import Bounces
from notifier.services.delivery import (
    Attempt,
    Outcome,
    attempt_delivery,
    failed_attempt,
    failed_for_good,
    sent,
    simulated,
    store_and_queue,
)
from notifier.stores.notifications import NotificationStore
from notifier.stores.suppressions import SuppressionList
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
    note: Note | None = None,
) -> Notification:
    """Check and render a mail request, store it, and queue it unless it is scheduled for later;
    ``note`` is told its id once it is accepted."""
    recipients = len(request.to) + len(request.cc) + len(request.bcc)
    if not 1 <= recipients <= MAX_RECIPIENTS:
        raise Refused(
            "to",
            f"1 to {MAX_RECIPIENTS} recipients in all of to, cc and bcc",
            detail="a mail needs recipients",
        )
    if request.unsubscribe and (len(request.to) != 1 or request.cc or request.bcc):
        raise Refused(
            "unsubscribe", "a mail with unsubscribe has one recipient, in to, and no cc or bcc"
        )
    subject, text, html = compose(
        template=request.template, data=request.data, subject=request.subject,
        text=request.text, html=request.html, templates=templates,
    )  # fmt: skip
    payload = {
        "client": client,  # whose suppression list applies
        "sender": sender,
        "to": request.to,
        "cc": request.cc,
        "bcc": request.bcc,
        "reply_to": request.reply_to,
        "subject": subject,
        "text": text,
        "html": html,
        **({"bulk": True} if request.unsubscribe else {}),
    }
    send_at = request.send_at.timestamp() if request.send_at else None
    if send_at is not None and send_at <= time.time():
        send_at = None  # due already: send now
    return store_and_queue(
        store, queue, client=client, kind=KIND, payload=payload, send_at=send_at,
        reference=request.reference, test=test, note=note,
    )  # fmt: skip


def compose(
    *,
    template: str | None,
    data: dict[str, Any],
    subject: str | None,
    text: str | None,
    html: str | None,
    templates: MailTemplates,
    row: tuple[str | int, ...] = (),
) -> tuple[str, str | None, str | None]:
    """The subject, text and HTML of a mail: the template rendered with ``data``, where the
    request does not give a part itself. 422 naming the field at fault; ``row`` is where in the
    body ``data`` is (a batch's row), so an error in it names the row.
    """
    if template is not None:
        # What the request gives itself wins over the template's part.
        try:
            rendered = templates.render(template, data)
        except TemplateError as e:
            at = (e.field,) if e.field == "template" else (*row, e.field)
            raise Refused(at, e.reason, detail=e.detail) from None
        text = text if text is not None else rendered.text
        html = html if html is not None else rendered.html
        if not subject:
            # A template without a subject is the request's fault; one that renders an empty or
            # broken subject from this row's data is the row's.
            at = (*row, "data") if row and rendered.subject is not None else ()
            _check_subject(rendered.subject, at or ("subject",))
            return cast(str, rendered.subject), text, html
    elif text is None and html is None:
        raise Refused(
            "text", "give at least one of text, html, template", detail="a mail needs content"
        )
    _check_subject(subject, ("subject",))
    return cast(str, subject), text, html


def _check_subject(subject: str | None, loc: tuple[str | int, ...]) -> None:
    if not subject:
        raise Refused(loc, "field required", detail="a mail needs a subject")
    # Checked again here: a template's subject is rendered from data the schema never saw.
    if HEADER_BREAKS.search(subject) or len(subject) > 998:
        raise Refused(
            loc, f"1 to 998 characters on {ONE_LINE}", detail="the subject is not one header line"
        )


def deliver_mail(
    notification_id: str,
    *,
    store: NotificationStore,
    provider: MailProvider,
    max_attempts: int,
    lease: float = 300.0,
    lane: str = "",
    expand: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    suppressions: SuppressionList | None = None,
    unsubscribe: Callable[[str, str], str] | None = None,
    bounces: Bounces | None = None,
) -> Outcome:
    """Make one delivery attempt and record its outcome in the status record.

    ``expand`` makes the payload of a batch's row into its mail (``RowMails.expand``). A
    recipient on the client's ``suppressions`` list is left out; with none left the mail is
    ``suppressed``, not sent. Bulk mail (a batch's row, a mail asking for it) to one recipient
    carries the one-click unsubscribe headers of RFC 8058, with ``unsubscribe(client, address)``
    as the URL (when the service has a public URL). With ``bounces``, a mail to one recipient
    has an envelope sender of its own, so that a bounce finds it.
    """

    def send(claimed: Attempt) -> Outcome:
        try:
            payload = claimed.payload if expand is None else expand(claimed.payload)
        except PermanentProviderError as e:
            return failed_for_good(store, notification_id, claimed.attempt, e)
        # Whose list and links apply (a payload from before payloads named it: the record's).
        client = payload.get("client") or store.client_of(notification_id)
        if suppressions is not None and client is not None:
            kept = unsuppressed(payload, client, notification_id, store, suppressions)
            if kept is None:
                return Outcome("skipped", claimed.attempt)
            payload = kept
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
            headers=unsubscribe_headers(payload, client, unsubscribe),
            envelope_from=bounces.envelope_sender(notification_id, payload["to"][0])
            if bounces is not None
            and len(payload["to"]) == 1
            and not payload["cc"]
            and not payload["bcc"]
            else None,
        )
        return hand_over(store, claimed, message, provider, max_attempts=max_attempts)

    return attempt_delivery(
        store, notification_id, lease=lease, max_attempts=max_attempts, send=send, lane=lane
    )


def unsubscribe_headers(
    payload: dict[str, Any], client: str | None, unsubscribe: Callable[[str, str], str] | None
) -> tuple[tuple[str, str], ...]:
    """``List-Unsubscribe`` (the recipient's own link) and ``List-Unsubscribe-Post`` for bulk
    mail to one recipient; nothing for other mail, or without a public URL."""
    if unsubscribe is None or client is None or not payload.get("bulk") or len(payload["to"]) != 1:
        return ()
    return (
        ("List-Unsubscribe", f"<{unsubscribe(client, payload['to'][0])}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


def unsuppressed(
    payload: dict[str, Any],
    client: str,
    notification_id: str,
    store: NotificationStore,
    suppressions: SuppressionList,
) -> dict[str, Any] | None:
    """The payload without the recipients ``client``'s suppression list stops; None (the
    notification settled ``suppressed``) when that is every recipient."""
    everyone = [*payload["to"], *payload["cc"], *payload["bcc"]]
    stopped = suppressions.blocked(client, everyone, bulk=bool(payload.get("bulk")))
    if not stopped:
        return payload
    kept = {part: [a for a in payload[part] if a not in stopped] for part in ("to", "cc", "bcc")}
    if any(kept.values()):
        log.info("%s: %d recipients left out, suppressed", notification_id, len(stopped))
        return {**payload, **kept}
    why = ", ".join(sorted(set(stopped.values())))
    store.settle(
        notification_id, "suppressed", provider=None,
        error=f"the address is on the suppression list ({why})",
    )  # fmt: skip
    return None


def hand_over(
    store: NotificationStore,
    claimed: Attempt,
    message: OutgoingMail,
    provider: MailProvider,
    *,
    max_attempts: int,
) -> Outcome:
    """Give ``message`` to the provider and record what came of it."""
    notification_id = message.notification_id
    try:
        with tracing.provider_call(provider.name, notification_id):
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
            deadline=claimed.deadline,
        )
    return sent(store, notification_id, claimed.attempt, provider.name, ref)
