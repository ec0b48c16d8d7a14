"""Accept a mail (validate, render, store, enqueue) and deliver it (claim, send, settle)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from redis import RedisError

from notifier.errors import (
    PermanentProviderError,
    Refused,
    TemplateError,
)
from notifier.providers.base import MailProvider, OutgoingMail
from notifier.providers.simulated import mail_outcome
from notifier.providers.smtp import ENHANCED_STATUS, bad_address
from notifier.queueing import Enqueuer, Note
from notifier.schemas import HEADER_BREAKS, MAX_RECIPIENTS, ONE_LINE, MailRequest, Notification
from notifier.services.delivery import Attempt, Delivery, Outcome, store_and_queue
from notifier.stores.notifications import NotificationStore
from notifier.stores.suppressions import SuppressionList, normal
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
            # A template without a subject is the request's fault (its subject is missing); one
            # that renders an empty or broken subject from the data is the data's (a batch's:
            # the row's).
            at = (*row, "data") if rendered.subject is not None else ("subject",)
            _check_subject(rendered.subject, at)
            return cast(str, rendered.subject), text, html
    elif text is None and html is None:
        raise Refused(
            "text", "give at least one of text, html, template", detail="a mail needs content"
        )
    _check_subject(subject, ("subject",))
    return cast(str, subject), text, html


def _check_subject(subject: str | None, loc: tuple[str | int, ...]) -> None:
    # At "data": the template's subject, rendered from data the schema never saw.
    rendered = "the subject it renders: " if loc[-1] == "data" else ""
    if not subject:
        raise Refused(loc, f"{rendered}field required", detail="a mail needs a subject")
    if HEADER_BREAKS.search(subject) or len(subject) > 998:
        raise Refused(
            loc,
            f"{rendered}1 to 998 characters on {ONE_LINE}",
            detail="the subject is not one header line",
        )


def deliver_mail(d: Delivery, notification_id: str, *, lane: str = "") -> Outcome:
    """Make one delivery attempt and record its outcome in the status record.

    A batch's row is made its mail first (``d.expand``). A recipient on the client's
    suppression list is left out; with none left the mail is ``suppressed``, not sent. Bulk mail
    (a batch's row, a mail asking for it) to one recipient carries the one-click unsubscribe
    headers of RFC 8058 (when the service has a public URL). With bounces on, a mail to one
    recipient has an envelope sender of its own, so that a bounce finds it.
    """

    def send(claimed: Attempt) -> Outcome:
        try:
            payload = d.expand(claimed.payload)
        except PermanentProviderError as e:
            return claimed.failed_for_good(e)
        # Whose list and links apply (a payload from before payloads named it: the record's).
        client = payload.get("client") or d.store.client_of(notification_id)
        if client is not None:
            kept = unsuppressed(payload, client, claimed, d.suppressions)
            if kept is None:
                return Outcome("skipped", claimed.attempt)
            payload = kept
        if payload.get("test"):
            return claimed.simulated(
                mail_outcome([*payload["to"], *payload["cc"], *payload["bcc"]])
            )
        alone = len(payload["to"]) == 1 and not payload["cc"] and not payload["bcc"]
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
            headers=unsubscribe_headers(payload, client, d.unsubscribe),
            envelope_from=d.bounces.envelope_sender(notification_id, payload["to"][0])
            if d.bounces is not None and alone
            else None,
        )
        return hand_over(claimed, message, d, client)

    return d.attempt(notification_id, send, lane=lane)


def unsubscribe_headers(
    payload: dict[str, Any], client: str | None, unsubscribe: Callable[[str, str], str] | None
) -> tuple[tuple[str, str], ...]:
    """``List-Unsubscribe`` (the recipient's own link) and ``List-Unsubscribe-Post`` for bulk
    mail to one recipient; nothing for other mail, or without a public URL. One-click only
    over https: RFC 8058 3.1 wants "one HTTPS URI", and receivers drop it otherwise (an http
    public URL, as in development, keeps RFC 2369's link alone)."""
    if unsubscribe is None or client is None or not payload.get("bulk") or len(payload["to"]) != 1:
        return ()
    link = unsubscribe(client, payload["to"][0])
    one_click = (("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),)
    return (("List-Unsubscribe", f"<{link}>"), *(one_click if link.startswith("https://") else ()))


def unsuppressed(
    payload: dict[str, Any],
    client: str,
    claimed: Attempt,
    suppressions: SuppressionList,
    *,
    code: bool = False,
) -> dict[str, Any] | None:
    """The payload without the recipients ``client``'s suppression list stops for it (a
    ``code`` by mail goes where a complaint stopped other mail); None (the notification
    settled ``suppressed``) when that is every recipient."""
    everyone = [*payload["to"], *payload["cc"], *payload["bcc"]]
    stopped = suppressions.blocked(client, everyone, bulk=bool(payload.get("bulk")), code=code)
    if not stopped:
        return payload
    kept = {part: [a for a in payload[part] if a not in stopped] for part in ("to", "cc", "bcc")}
    if any(kept.values()):
        log.info("%s: %d recipients left out, suppressed", claimed.id, len(stopped))
        return {**payload, **kept}
    why = ", ".join(sorted(set(stopped.values())))
    error = f"the address is on the suppression list ({why})"
    claimed.store.settle(claimed.id, "suppressed", provider=None, error=error)
    return None


def hand_over(claimed: Attempt, message: OutgoingMail, d: Delivery, client: str | None) -> Outcome:
    """Give ``message`` to the first mail provider that takes it and record what came of it:
    one down, throttling or refusing our account hands it to the next; a refusal of the
    recipient or the content fails it for good (see :meth:`Attempt.hand_over`). A mail sent
    counts in ``client``'s bounce-rate guard, and the recipients it went to are recorded: a
    provider's events make it undelivered once each of them failed. Those the provider
    refused while it took the mail for the others are left out (see :func:`refused_recipient`)."""
    taken = sorted({normal(a) for a in (*message.to, *message.cc, *message.bcc)})

    def send(provider: MailProvider) -> str:
        ref = provider.send_mail(message=message)
        for address, reply in getattr(ref, "refused", {}).items():
            if normal(address) in taken:  # read by hand_over once this returns
                taken.remove(normal(address))
            try:
                refused_recipient(claimed, d, client, address, reply)
            except RedisError as e:
                # The provider took the mail: a note that fails must not make it a failed attempt
                # (its retry would send it again to everyone the relay took).
                log.warning("%s: a refused recipient was not noted: %s", claimed.id, e)
        return ref

    return claimed.hand_over(d.mails(), send, recipients=taken, volume_of=client)


def refused_recipient(
    claimed: Attempt, d: Delivery, client: str | None, address: str, reply: str
) -> None:
    """A recipient a provider refused while it took the mail for the others (an SMTP relay's
    ``550 5.1.1`` at RCPT): no bounce will come for it, so what a bounce would do is done now.
    A bad address (RFC 3463's 5.1.x, 5.2.1; not 5.1.7/5.1.8, our sender's) is suppressed for the
    ``client``, as a DSN's hard bounce is; a refusal for now (4.x.x) is noted on the record as its
    ``soft_bounce``: that recipient does not get this mail."""
    status = ENHANCED_STATUS.search(reply)
    code = reply[:1]
    if code == "5" and status and bad_address(status[0]) and client is not None:
        d.suppressions.add(client, address, "bounced")
        log.warning("%s: a recipient refused as a bad address, suppressed: %s", claimed.id, reply)
        return
    log.warning("%s: a recipient refused, not sent to: %s", claimed.id, reply)
    if code == "4":
        claimed.store.soft_bounce(claimed.id, status[0] if status else reply[:3], reply)
