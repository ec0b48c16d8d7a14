"""Captchas, by SMS and by mail: accept a send (limits, record, queue), deliver it (code, text,
provider), verify. One lifecycle; a :class:`Channel` says what differs."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, get_args

import jinja2
import phonenumbers

from notifier.errors import (
    Limited,
    Refused,
    TemplateError,
)
from notifier.mailboxes import mailbox
from notifier.providers.base import CaptchaSender, OutgoingMail, SmsProvider
from notifier.providers.simulated import Outcome as SimulatedOutcome
from notifier.providers.simulated import mail_outcome, phone_outcome
from notifier.queueing import Enqueuer, Note
from notifier.schemas import HEADER_BREAKS, Locale, Notification
from notifier.services.delivery import Attempt, Delivery, Outcome, store_and_queue
from notifier.services.mail import hand_over, unsuppressed
from notifier.settings import ConfigError
from notifier.stores.captchas import CaptchaStore, Sender, Verdict
from notifier.stores.notifications import NotificationStore
from notifier.templating import MailTemplates, SmsTemplates

log = logging.getLogger(__name__)
EXPIRED = "the code expired before it could be sent"
# ... said only when no earlier attempt may have sent it: one whose outcome never came may have.
EXPIRED_UNRECORDED = (
    "the code expired; an earlier attempt, whose outcome was never recorded, may have sent it"
)


@dataclass(frozen=True)
class CaptchaPolicy:
    """The captcha settings, in one place."""

    length: int = 6
    ttl: int = 300
    resend_interval: int = 60
    max_attempts: int = 5
    daily_limit: int = 10  # sends to one phone (or address) a day, for each client
    phone_daily_ceiling: int = 30  # ... and for all clients together
    address_daily_ceiling: int = 30
    ip_hourly_limit: int = 30  # sends from one end user's address an hour, for each client
    ip_hourly_ceiling: int = 90  # ... and for all clients together
    product: str = "Notifier"
    # The fraud guard: where a code may be texted (empty: everywhere), what never is.
    allowed_countries: frozenset[str] = frozenset()
    blocked_prefixes: tuple[str, ...] = ()


class CaptchaAsk(Protocol):
    """A send, by either channel (``CaptchaRequest``, ``MailCaptchaRequest``)."""

    @property
    def recipient(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def client_ip(self) -> str | None: ...
    @property
    def reference(self) -> str | None: ...


class CaptchaCheck(Protocol):
    """A verify, by either channel (``VerifyRequest``, ``MailVerifyRequest``)."""

    @property
    def recipient(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def code(self) -> str: ...


def refusal(phone: str, policy: CaptchaPolicy) -> str | None:
    """Why the fraud guard refuses to text ``phone`` (E.164): ``blocked_prefix`` or ``country``
    (from the number itself, with libphonenumber's metadata), or None."""
    if phone.startswith(policy.blocked_prefixes):
        return "blocked_prefix"
    if policy.allowed_countries:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
        if country not in policy.allowed_countries:
            return "country"
    return None


def guard(
    phone: str,
    policy: CaptchaPolicy,
    store: NotificationStore,
    loc: tuple[str | int, ...],
    check: Callable[[str, CaptchaPolicy], str | None] = refusal,
    counted: set[str] | None = None,
) -> None:
    """Refuse (naming ``loc``) a number the fraud guard (``check``) refuses, counted in /metrics
    by reason: once a request (``counted``: the reasons a batch's rows counted already)."""
    refused = check(phone, policy)
    if refused is None:
        return
    if counted is None or refused not in counted:
        store.count(f"sms_refused:{refused}")
        if counted is not None:
            counted.add(refused)
    why = "is in a range" if refused == "blocked_prefix" else "is in a country"
    raise Refused(
        loc,
        f"refused by the SMS fraud guard ({refused})",
        detail=f"nothing is texted to this number: it {why} this service does not text",
    )


def mail_identity(address: str) -> str:
    """The address a mail captcha's code is kept for: its domain in lower case (domains are not
    case sensitive; a local part may be, RFC 5321 2.4, so it stays as given)."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


@dataclass(frozen=True)
class Channel:
    """What a captcha's channel changes in the one lifecycle."""

    name: str  # the /metrics label: sms, mail
    kind: str  # the record's kind
    field: str  # the request's (and payload's) field naming the recipient
    window: str  # the limit keys' word (notifier.stores.captchas)
    identity: Callable[[str], str]  # the recipient as its code is kept for it
    counted: Callable[[str], str]  # ... and as its limits count it
    outcome: Callable[[str], SimulatedOutcome]  # a test key's outcome, from the recipient
    guard: Callable[[str, CaptchaPolicy], str | None] | None = None  # the fraud guard
    ceiling: Callable[[CaptchaPolicy], int] = lambda policy: policy.phone_daily_ceiling


SMS = Channel(
    name="sms", kind="sms_captcha", field="phone", window="phone",
    identity=str, counted=str, outcome=phone_outcome, guard=refusal,
)  # fmt: skip
MAIL = Channel(
    name="mail", kind="mail_captcha", field="to", window="mail", identity=mail_identity,
    counted=mailbox, outcome=lambda address: mail_outcome([address]),
    ceiling=lambda policy: policy.address_daily_ceiling,
)  # fmt: skip
CHANNELS = {channel.kind: channel for channel in (SMS, MAIL)}


def sms_text(templates: SmsTemplates, parts: dict[str, Any]) -> str:
    """A captcha's text, in its locale."""
    return templates.render(
        "captcha", parts["locale"], product=parts["product"], code=parts["code"],
        minutes=parts["minutes"],
    )  # fmt: skip


def check_templates(policy: CaptchaPolicy, sms: SmsTemplates, mail: MailTemplates) -> None:
    """Render every locale's captcha text and mail once, so that a template an operator
    replaced (``NOTIFIER_TEMPLATES_DIR``) and cannot render a code stops the start-up."""
    for locale in get_args(Locale):
        parts = {"code": "0" * policy.length, "minutes": math.ceil(policy.ttl / 60),
                 "product": policy.product, "locale": locale, "purpose": "login"}  # fmt: skip
        what = f"the captcha templates of {locale}"
        try:
            text = sms_text(sms, parts)
            rendered = mail.render(locale, parts)
        except TemplateError as e:
            raise ConfigError(f"NOTIFIER_TEMPLATES_DIR: {what}: {e.detail} ({e.reason})") from None
        except jinja2.TemplateError as e:  # a file missing, or one that is not Jinja
            raise ConfigError(f"NOTIFIER_TEMPLATES_DIR: {what}: {type(e).__name__}: {e}") from None
        if not rendered.subject or HEADER_BREAKS.search(rendered.subject):
            raise ConfigError(f"NOTIFIER_TEMPLATES_DIR: {what}: the mail needs a one-line subject")
        for part in (text, rendered.text, rendered.html):  # each a reader may see alone
            if part is not None and parts["code"] not in part:
                raise ConfigError(
                    f"NOTIFIER_TEMPLATES_DIR: {what}: a text or a part of the mail lacks the code"
                )


def scope(client: str, purpose: str, recipient: str) -> str:
    """What a code is bound to: the calling client, the purpose and the recipient."""
    return f"{client}:{purpose}:{recipient}"


def accept_captcha(
    request: CaptchaAsk,
    *,
    client: str,
    policy: CaptchaPolicy,
    store: NotificationStore,
    captchas: CaptchaStore,
    queue: Enqueuer,
    channel: Channel = SMS,
    test: bool = False,
    note: Note | None = None,
) -> Notification:
    """Take the send limits, store the notification and queue it (``note`` told its id once it
    is accepted); refused naming ``phone`` when the fraud guard refuses the number, limited
    when a limit refuses."""
    recipient = channel.identity(request.recipient)
    if channel.guard is not None:
        guard(recipient, policy, store, ("phone",), check=channel.guard)
    member = str(uuid.uuid4())  # this send's entry in the limits
    sender = Sender(
        client, request.purpose, channel.counted(recipient), request.client_ip, channel.window
    )
    limited = captchas.take_send(
        sender,
        member=member,
        resend_interval=policy.resend_interval,
        daily_limit=policy.daily_limit,
        ceiling=channel.ceiling(policy),
        ip_limit=policy.ip_hourly_limit,
        ip_ceiling=policy.ip_hourly_ceiling,
    )
    if limited is not None:
        raise Limited(
            limited.retry_after,
            f"captcha {limited.limit.replace('_', ' ')} reached; retry after {limited.retry_after} s",
        )
    # The code must not outlive what the answer promised, however late it is sent.
    deadline = time.time() + policy.ttl
    payload = {
        channel.field: recipient,
        "purpose": request.purpose,
        "locale": request.locale,
        "client": client,
        "deadline": deadline,
    }
    try:
        return store_and_queue(
            store, queue, client=client, kind=channel.kind, payload=payload, expires=deadline,
            reference=request.reference, test=test, note=note,
        )  # fmt: skip
    except Exception:
        # Not accepted after all: give the limits back (if Redis lets us).
        with contextlib.suppress(Exception):
            captchas.give_back(sender, member=member)
        raise


# Gives a code's parts (code, minutes, product, locale, purpose) to its recipient through the
# channel's providers and records what came of it.
Transmit = Callable[[Attempt, str, dict[str, Any]], Outcome]


def deliver_code(
    d: Delivery, notification_id: str, channel: Channel, transmit: Transmit, *, lane: str = ""
) -> Outcome:
    """Make a code, keep its digest, and hand it to ``transmit`` (a test key's: simulated)."""
    policy = d.captcha_policy

    def send(claimed: Attempt) -> Outcome:
        payload = claimed.payload
        left = payload["deadline"] - time.time()
        if left < 1:
            error = EXPIRED_UNRECORDED if claimed.unrecorded else EXPIRED
            d.store.settle(notification_id, "failed", provider=None, error=error)
            return Outcome("failed", claimed.attempt)
        recipient = payload[channel.field]
        where = scope(payload["client"], payload["purpose"], recipient)
        # A new code on each attempt: the code of an attempt that failed reached no one (the
        # code a provider took before it stays good meanwhile: CaptchaStore.new_code).
        code = d.captchas.new_code(
            where, length=policy.length, ttl=left, max_attempts=policy.max_attempts
        )
        if payload.get("test"):
            # A test key's integration test reads the code from the status record.
            d.store.show_test_code(notification_id, code)
            outcome = claimed.simulated(channel.outcome(recipient))
        else:
            parts = {
                "code": code,
                "minutes": math.ceil(left / 60),
                "product": policy.product,
                "locale": payload["locale"],
                "purpose": payload["purpose"],
            }
            outcome = transmit(claimed, recipient, parts)
            if outcome.status == "sent":
                # What a falling verify ratio is read against (see verify_captcha).
                label = d.captchas.purpose_label(payload["client"], payload["purpose"])
                d.store.tally(f"captchas_sent:{channel.name}:{label}")
        if outcome.status == "sent":
            d.captchas.delivered(where, code, until=payload["deadline"])
        return outcome

    return d.attempt(notification_id, send, lane=lane, lease=d.code_lease)


def deliver_captcha(d: Delivery, notification_id: str, *, lane: str = "") -> Outcome:
    """Send an SMS captcha through the first of the number's providers that takes it.

    A provider that sends approved templates (:class:`~notifier.providers.base.CaptchaSender`:
    Aliyun, Tencent) gets the captcha's parts; any other gets the text rendered from our
    templates.
    """

    def transmit(claimed: Attempt, phone: str, parts: dict[str, Any]) -> Outcome:
        text = sms_text(d.sms_templates, parts)

        def send(provider: SmsProvider) -> str:
            if isinstance(provider, CaptchaSender):
                return provider.send_captcha(to=phone, **parts)
            return provider.send_sms(to=phone, body=text)

        return claimed.hand_over(d.sms(phone), send)

    return deliver_code(d, notification_id, SMS, transmit, lane=lane)


def deliver_mail_captcha(d: Delivery, notification_id: str, *, lane: str = "") -> Outcome:
    """Send a captcha by mail: the locale's template rendered with the code's parts. An
    address that bounced (or was suppressed by hand) gets none: ``suppressed``; one whose person
    complained of a mail still gets the code they asked for. With bounces on, it goes out from
    its own envelope sender, as other mail does."""

    def transmit(claimed: Attempt, address: str, parts: dict[str, Any]) -> Outcome:
        one = {"to": [address], "cc": [], "bcc": []}
        client = claimed.payload["client"]
        if unsuppressed(one, client, claimed, d.suppressions, code=True) is None:
            return Outcome("skipped", claimed.attempt)
        rendered = d.mail_captcha_templates.render(parts["locale"], parts)
        message = OutgoingMail(
            notification_id=notification_id,
            sender=d.sender,
            to=(address,),
            subject=rendered.subject or "",
            text=rendered.text,
            html=rendered.html,
            # Sent by a machine, for one person: no auto-responder answers it (RFC 3834).
            headers=(("Auto-Submitted", "auto-generated"),),
            envelope_from=d.bounces.envelope_sender(notification_id, address)
            if d.bounces
            else None,
        )
        return hand_over(claimed, message, d, client)

    return deliver_code(d, notification_id, MAIL, transmit, lane=lane)


def verify_captcha(
    request: CaptchaCheck,
    *,
    client: str,
    policy: CaptchaPolicy,
    captchas: CaptchaStore,
    channel: Channel = SMS,
    store: NotificationStore | None = None,
    test: bool = False,
) -> Verdict:
    """Check a code the user typed; a good one is counted in ``store``'s /metrics counters,
    beside the codes sent: pumping shows as a verify ratio that falls (Twilio's advice)."""
    where = scope(client, request.purpose, channel.identity(request.recipient))
    verdict = captchas.verify(where, request.code, max_attempts=policy.max_attempts)
    if verdict.valid and store is not None and not test:  # as sends are: live traffic only
        # Told after the code was used up: a count that fails must not make the answer a 503.
        label = captchas.purpose_label(client, request.purpose)
        store.tally(f"captchas_verified:{channel.name}:{label}")
    return verdict
