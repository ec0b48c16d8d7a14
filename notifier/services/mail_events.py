"""Mail providers' events: SES's (published through Amazon SNS) and SendGrid's (its Event Webhook),
read into one shape, :class:`MailEvent`, and applied to the records, the suppression lists and
the bounce-rate guard.

Each event is about one recipient of a mail (or, for SES's ``Reject``, the whole mail), found
by the provider's message id (the record's ``provider_ref``):

=============  ========================================  =================================
event          SES (``notificationType`` / ``eventType``)  SendGrid (``event``)
=============  ========================================  =================================
delivered      Delivery, each of ``delivery.recipients``   delivered
bounced        Bounce, ``bounceType`` Permanent             bounce (``type`` bounce)
soft           Bounce, Transient or Undetermined;           bounce with ``type`` blocked;
               DeliveryDelay                                deferred
dropped        Bounce or Complaint, its subtype             dropped
               OnAccountSuppressionList
failed         Reject (the whole mail)                      (none)
complained     Complaint (not ``not-spam`` feedback)        spamreport
=============  ========================================  =================================

What each does (``lua/notifications/mail_event.lua`` holds the record's part): a mail is
``delivered`` once a recipient is, ``undelivered`` once every recipient bounced or was dropped
(or the mail was refused); a permanent bounce suppresses the address as ``bounced``, a
complaint as ``complained`` and notes the mail's first ``complaint`` on the record (with a status
callback); a drop suppresses it only when SendGrid drops it as an address that bounced or is
invalid (``bounced``) or that reported spam (``complained``); a soft one is the record's
``soft_bounce``. A mail's first permanent bounce and first complaint count in its client's
bounce-rate guard (a drop does not: the provider never tried; SES says the same of its own
list's, "This does not count toward your bounce rate metric"). Anything else (SES's Send, Open, Click; SendGrid's processed, open, click...)
is ignored. An event applied twice, or after a later one, changes nothing more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from notifier.redact import redact
from notifier.stores.guard import BounceGuard, RateKind
from notifier.stores.notifications import NotificationStore
from notifier.stores.notifications.events import Applied, Kind
from notifier.stores.suppressions import Reason, SuppressionList, normal
from notifier.timestamps import rfc3339

log = logging.getLogger(__name__)

# SendGrid drops a mail without trying when the address is on one of its own lists: these are
# the reasons that say the address is bad, or its person reported spam (SendGrid's "Event
# Webhook Reference", dropped events); other drops (content, our account) suppress nothing.
# SES never tries an address on the account's suppression list either: it says so as a
# Permanent bounce, or a complaint, of subtype OnAccountSuppressionList ("Amazon SNS notification
# contents for Amazon SES"), read here as drops with these reasons.
SES_LISTED_BOUNCED = "on the SES account's suppression list, as bounced"
SES_LISTED_COMPLAINED = "on the SES account's suppression list, as complained"
DROPPED_SUPPRESS: Mapping[str, Reason] = {
    "bounced address": "bounced",
    "invalid": "bounced",
    "spam reporting address": "complained",
    SES_LISTED_BOUNCED.lower(): "bounced",
    SES_LISTED_COMPLAINED.lower(): "complained",
}
ACCOUNT_LISTED = "OnAccountSuppressionList"
# The rate of the bounce-rate guard each kind of event counts in.
GUARDED: Mapping[Kind, RateKind] = {"bounced": "bounce", "complained": "complaint"}
# The outcome a push of several events answers: the one that did the most.
_RANK = ("moved", "noted", "early", "duplicate", "unknown", "ignored")


@dataclass(frozen=True)
class MailEvent:
    """One event as read: the provider, its id of the mail, what happened and to whom
    (``recipient`` empty for the whole mail), when (RFC 3339), and the provider's words:
    a DSN ``status`` (or a kind of delay), the remote server's ``diagnostic``, the complaint's
    ``feedback`` type, the ``reason`` a mail was dropped or refused."""

    provider: str
    ref: str
    kind: Kind
    recipient: str
    at: str
    status: str = ""
    diagnostic: str = ""
    feedback: str | None = None
    reason: str = ""
    token: str = ""  # the recipient's token, in place of the address, in an event kept early
    # Whether the mail is ours by the id we send with it (SES's notification_id tag, SendGrid's
    # custom_args): False when the event carries the provider's tags or arguments and not ours
    # (an identity shared with another application); None when it carries none to tell by.
    ours: bool | None = None

    def line(self, token: str) -> str:
        """The event as one line of JSON, as the store keeps it while its send is unrecorded:
        its recipient by ``token`` (no address), the provider's words masked."""
        kept = replace(
            self, recipient="", token=token, status=redact(self.status),
            diagnostic=redact(self.diagnostic), reason=redact(self.reason),
        )  # fmt: skip
        return json.dumps(asdict(kept), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> MailEvent:
        return cls(**json.loads(line))

    def note(self) -> str:
        """What the record keeps of it (see mail_event.lua), addresses masked."""
        if self.kind == "soft":
            return json.dumps(
                {"status": self.status, "diagnostic": redact(self.diagnostic), "at": self.at}
            )
        if self.kind == "complained":
            return json.dumps({"type": self.feedback, "at": self.at})
        if self.kind == "bounced":
            return redact(f"bounced: {self.status} {self.diagnostic}".strip())
        if self.kind == "dropped":
            return redact(f"dropped: {self.reason}".strip())
        if self.kind == "failed":
            return redact(f"refused by {self.provider}: {self.reason}".strip())
        return ""

    @property
    def suppress(self) -> Reason | None:
        """What this event puts the address on its client's list as, if anything."""
        if self.kind == "bounced":
            return "bounced"
        if self.kind == "complained":
            return "complained"
        if self.kind == "dropped":
            return DROPPED_SUPPRESS.get(self.reason.strip().lower())
        return None


def _when(value: object) -> str:
    """A provider's time as ours (RFC 3339, UTC, milliseconds): SES's ISO 8601 text, SendGrid's
    Unix seconds; now, when there is none that reads."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return rfc3339(float(value))
        if isinstance(value, str) and value:
            return rfc3339(datetime.fromisoformat(value).timestamp())
    except (ValueError, OverflowError, OSError):
        pass
    return rfc3339(time.time())


def _text(found: Mapping[str, Any], key: str) -> str:
    value = found.get(key)
    return value if isinstance(value, str) else ""


def _objects(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# -- SES ------------------------------------------------------------------------------------


def ses_events(message: str) -> list[MailEvent]:
    """The events of an SES notification (the ``Message`` of an SNS notification), in either
    form SES publishes: ``notificationType`` (an identity's notifications) or ``eventType``
    (a configuration set's event destination). None for anything else."""
    try:
        found = json.loads(message)
    except (ValueError, RecursionError):
        return []
    if not isinstance(found, dict):
        return []
    kind = found.get("eventType") or found.get("notificationType")
    mail = found.get("mail")
    ref = _text(mail, "messageId") if isinstance(mail, dict) else ""
    reader = _SES.get(kind) if isinstance(kind, str) else None
    if not ref or reader is None:
        return []
    # A configuration set's events carry the mail's tags (ours: notification_id); an
    # identity's notifications carry none.
    tags = mail.get("tags") if isinstance(mail, dict) else None
    ours = "notification_id" in tags if isinstance(tags, dict) else None
    return [replace(event, ours=ours) for event in reader(ref, found)]


def _ses_delivery(ref: str, found: Mapping[str, Any]) -> Iterable[MailEvent]:
    delivery = found.get("delivery") or {}
    at = _when(delivery.get("timestamp"))
    for recipient in delivery.get("recipients") or ():
        if isinstance(recipient, str):
            yield MailEvent("ses", ref, "delivered", recipient, at)


def _ses_bounce(ref: str, found: Mapping[str, Any]) -> Iterable[MailEvent]:
    bounce = found.get("bounce") or {}
    at = _when(bounce.get("timestamp"))
    if bounce.get("bounceSubType") == ACCOUNT_LISTED:
        yield from _ses_listed(ref, found, bounce.get("bouncedRecipients"), SES_LISTED_BOUNCED, at)
        return
    # Permanent: the address will not take mail; Transient and Undetermined may pass (SES's
    # "Amazon SNS notification contents", bounce types).
    kind: Kind = "bounced" if bounce.get("bounceType") == "Permanent" else "soft"
    for recipient in _objects(bounce.get("bouncedRecipients")):
        if (address := _sent_to(_text(recipient, "emailAddress"), found)) is None:
            continue
        yield MailEvent(
            "ses", ref, kind, address, at,
            status=_text(recipient, "status") or _text(bounce, "bounceSubType"),
            diagnostic=_text(recipient, "diagnosticCode"),
        )  # fmt: skip


def _ses_listed(
    ref: str, found: Mapping[str, Any], recipients: object, reason: str, at: str
) -> Iterable[MailEvent]:
    """The recipients SES did not try, on the account's suppression list: drops."""
    for recipient in _objects(recipients):
        if (address := _sent_to(_text(recipient, "emailAddress"), found)) is not None:
            yield MailEvent("ses", ref, "dropped", address, at, reason=reason)


def _sent_to(address: str, found: Mapping[str, Any]) -> str | None:
    """The recipient of the mail an event's ``address`` is about; None when it is none of them.

    A bounce's ``emailAddress`` is the DSN's Final-Recipient when there is a DSN (SES's
    "Amazon SNS notification contents"): behind a forward, an address we never sent to. The
    mail's ``destination`` holds the addresses sent to: when the address is none of them and
    the mail went to one, it is that one; when it went to several, which one cannot be told, and
    the event is left out (it would suppress an address the client never gave, and count a
    failure against the mail's recipients)."""
    mail = found.get("mail")
    sent = mail.get("destination") if isinstance(mail, dict) else None
    if not isinstance(sent, list) or not all(isinstance(a, str) for a in sent):
        return address
    if address.lower() in (a.lower() for a in sent):
        return address
    if len(sent) == 1:
        return str(sent[0])
    log.warning("an SES event about an address none of its mail's %d recipients", len(sent))
    return None


def _ses_delay(ref: str, found: Mapping[str, Any]) -> Iterable[MailEvent]:
    delay = found.get("deliveryDelay") or {}
    at = _when(delay.get("timestamp"))
    for recipient in _objects(delay.get("delayedRecipients")):
        yield MailEvent(
            "ses", ref, "soft", _text(recipient, "emailAddress"), at,
            status=_text(recipient, "status") or _text(delay, "delayType"),
            diagnostic=_text(recipient, "diagnosticCode"),
        )  # fmt: skip


def _ses_complaint(ref: str, found: Mapping[str, Any]) -> Iterable[MailEvent]:
    complaint = found.get("complaint") or {}
    at = _when(complaint.get("arrivalDate") or complaint.get("timestamp"))
    recipients = complaint.get("complainedRecipients")
    if complaint.get("complaintSubType") == ACCOUNT_LISTED:
        yield from _ses_listed(ref, found, recipients, SES_LISTED_COMPLAINED, at)
        return
    feedback = _text(complaint, "complaintFeedbackType") or None
    if feedback == "not-spam":
        # "The entity providing the report does not consider the message to be spam" (SES,
        # complaint types): a correction, not a complaint.
        return
    for recipient in _objects(recipients):
        yield MailEvent(
            "ses", ref, "complained", _text(recipient, "emailAddress"), at, feedback=feedback
        )


def _ses_reject(ref: str, found: Mapping[str, Any]) -> Iterable[MailEvent]:
    reject = found.get("reject") or {}
    at = _when((found.get("mail") or {}).get("timestamp"))
    yield MailEvent("ses", ref, "failed", "", at, reason=_text(reject, "reason"))


_SES = {
    "Delivery": _ses_delivery,
    "Bounce": _ses_bounce,
    "DeliveryDelay": _ses_delay,
    "Complaint": _ses_complaint,
    "Reject": _ses_reject,
}


# -- SendGrid -------------------------------------------------------------------------------


def sendgrid_events(items: Iterable[Mapping[str, Any]]) -> list[MailEvent]:
    """The events of an Event Webhook post we act on, in order; SendGrid's others (processed,
    open, click, unsubscribe...) and any without an ``sg_message_id`` or ``email`` are left out.

    ``sg_message_id`` is the record's ``provider_ref`` (the ``X-Message-Id`` SendGrid answered
    the send with) and a suffix of SendGrid's own, ``.filter…`` or ``.recvd…``."""
    found: list[MailEvent] = []
    for item in items:
        before = len(found)
        ref = _message_id(_text(item, "sg_message_id"))
        recipient, event = _text(item, "email"), _text(item, "event")
        if not ref or not recipient:
            continue
        at = _when(item.get("timestamp"))
        if event == "delivered":
            found.append(MailEvent("sendgrid", ref, "delivered", recipient, at))
        elif event == "bounce":
            # type "blocked": the receiving server would not take it now, for a reason not of
            # the address (its IP's reputation, the content): soft, as SendGrid reads it.
            kind: Kind = "soft" if _text(item, "type") == "blocked" else "bounced"
            found.append(MailEvent(
                "sendgrid", ref, kind, recipient, at, status=_text(item, "status"),
                diagnostic=_text(item, "reason"),
            ))  # fmt: skip
        elif event == "deferred":
            found.append(MailEvent(
                "sendgrid", ref, "soft", recipient, at, status="deferred",
                diagnostic=_text(item, "response"),
            ))  # fmt: skip
        elif event == "dropped":
            found.append(
                MailEvent("sendgrid", ref, "dropped", recipient, at, reason=_text(item, "reason"))
            )
        elif event == "spamreport":
            # A spam report is the feedback type "abuse" (RFC 5965).
            found.append(MailEvent("sendgrid", ref, "complained", recipient, at, feedback="abuse"))
        # Every mail we send carries its notification_id in custom_args, which SendGrid puts
        # in each of its events.
        ours = bool(_text(item, "notification_id"))
        found[before:] = [replace(event, ours=ours) for event in found[before:]]
    return found


def _message_id(sg_message_id: str) -> str:
    """The ``X-Message-Id`` in an event's ``sg_message_id``: before its ``.filter…`` or
    ``.recvd…`` suffix (SendGrid's older ids hold dots of their own), else before its first
    dot."""
    found = _SUFFIX.search(sg_message_id)
    return sg_message_id[: found.start()] if found else sg_message_id.split(".", 1)[0]


_SUFFIX = re.compile(r"\.(?:filter|recvd)")


# -- applying them --------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSink:
    """Applies mail events: to the records (``store``), the clients' suppression lists and
    their bounce-rate guard. ``secret`` keys the recipients' tokens on the records."""

    store: NotificationStore
    suppressions: SuppressionList
    guard: BounceGuard
    secret: bytes

    def token(self, address: str) -> str:
        """A recipient's token on a record: a keyed hash of the address, never the address."""
        return hmac.new(self.secret, normal(address).encode(), hashlib.sha256).hexdigest()[:16]

    def apply(self, events: Sequence[MailEvent]) -> str:
        """Apply ``events`` in order; what they came to, the one that did the most (``moved``,
        ``noted``, ``early``, ``duplicate``) or ``ignored`` when there were none."""
        outcomes = [self._one(event) for event in events]
        return min(outcomes, key=_RANK.index, default="ignored")

    def apply_kept(
        self, provider: str, ref: str, lines: Sequence[str], recipients: Sequence[str]
    ) -> None:
        """Apply the events kept for a send recorded now (the store's ``kept_events``): each
        names its recipient by token, found again among the send's ``recipients`` (for the
        suppression list, which keeps addresses)."""
        by_token = {self.token(address): address for address in recipients}
        for line in lines:
            try:
                event = MailEvent.from_line(line)
            except (ValueError, TypeError):
                log.warning("a kept %s event of %s is not one: skipped", provider, ref)
                continue
            self._one(replace(event, recipient=by_token.get(event.token, event.recipient)))

    def _one(self, event: MailEvent) -> str:
        token = event.token or (self.token(event.recipient) if event.recipient else "")
        if event.kind != "failed" and not token:
            return "ignored"
        applied = self.store.mail_event(
            event.provider, event.ref, event.kind, token=token, note=event.note(),
            kept=event.line(token) if event.ours is not False else None,
        )  # fmt: skip
        if applied.outcome == "unknown":
            # A mail not ours (another application's, on a shared identity): not kept.
            return "ignored"
        if applied.outcome == "early":
            # Not ours, or too long ago, or its send not recorded yet: kept for an hour.
            log.info("%s %s event for message %s kept", event.provider, event.kind, event.ref)
            return "early"
        log.info(
            "%s: %s %s event: %s", applied.notification_id, event.provider, event.kind,
            applied.outcome,
        )  # fmt: skip
        if not applied.new:
            # The same event again (or one a later event made moot); 'missing': long gone.
            return "unknown" if applied.outcome == "missing" else "duplicate"
        if applied.client is not None:
            self._beside(event, applied, applied.client)
        return applied.outcome

    def _beside(self, event: MailEvent, applied: Applied, client: str) -> None:
        """What a new event does beside the record: the suppression list, the guard."""
        reason = event.suppress
        if reason is not None and event.recipient:
            self.suppressions.add(client, event.recipient, reason)
        elif reason is not None:  # kept early, its token none of the send's recipients'
            log.warning("%s: a %s event's recipient is not the mail's", applied.notification_id,
                        event.kind)  # fmt: skip
        rate = GUARDED.get(event.kind)
        if rate is not None and applied.first and applied.notification_id is not None:
            note_rate(self.guard, client, rate, self.store.sent_at(applied.notification_id))


def note_rate(guard: BounceGuard, client: str, rate: RateKind, sent: float | None = None) -> None:
    """Count a mail's first permanent bounce or complaint in ``client``'s guard (not for a mail
    ``sent`` before its last resume: the old window counted it); say so when it warns or
    pauses."""
    verdict = guard.note(client, rate, sent)
    if not verdict.new:
        return
    figures = f"{verdict.rate:.1%} ({verdict.count} of {verdict.volume} mails over 24 h)"
    if verdict.verdict == "pause":
        log.error(
            "client %s: mail paused, its %s rate is %s; resume with `notifier clients resume %s`",
            client, rate, figures, client, extra={"client": client, "guard": "pause"},
        )  # fmt: skip
    elif verdict.verdict == "warn":
        log.warning(
            "client %s: its %s rate is %s, at the warning threshold",
            client, rate, figures, extra={"client": client, "guard": "warn"},
        )  # fmt: skip
