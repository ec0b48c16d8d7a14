"""SMS notifications (``POST /v1/sms`` and the rows of ``POST /v1/sms/batch``): what is checked
at the door, and what a worker is given to send.

At the door, before anything is stored or any limit taken: the fraud guard (422 naming ``to``),
then the content (free ``text``, or a named SMS rendered with ``data``: 422 naming the field at
fault), then whether a provider for the number (its country's failover order, else
``NOTIFIER_SMS_PROVIDERS``) can carry it. A provider that sends only the templates its console
approved (:class:`~notifier.providers.base.TemplateSender`: Aliyun, Tencent) carries a named SMS
that has an approved template for it, with parameters in its style; any other provider carries
text. A request none of them can carry is 422 naming ``text`` or ``template``: never a failure a
worker finds later.

What a worker gets is the payload :meth:`OutgoingSms.payload` writes and
:meth:`OutgoingSms.read` reads back: the number, the text (or None), each template-only
provider's approved template with its rendered parameters, and the client's senders by provider.
A batch row's payload holds only its number and data: :meth:`RowTexts.expand` makes it the
same payload, rendered at send time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from notifier import segments
from notifier.errors import PermanentProviderError, Refused, TemplateError
from notifier.providers.base import SenderAware, SmsProvider, TemplateSender
from notifier.providers.simulated import phone_outcome
from notifier.queueing import Enqueuer, Note, TaskQueue
from notifier.schemas import (
    MAX_SMS_TEXT,
    Batch,
    Notification,
    SmsBatchRequest,
    SmsBatchRow,
    SmsRequest,
)
from notifier.services.batches import YIELD_EVERY, BatchContents, Rows, check_rows, store_batch
from notifier.services.captcha import CaptchaPolicy, guard
from notifier.services.delivery import Attempt, Delivery, Outcome, store_and_queue
from notifier.settings import ConfigError
from notifier.stores.batches import BatchStore, Row
from notifier.stores.notifications import NotificationStore
from notifier.templating import Approved, NamedSms

KIND = "sms"
Route = Callable[[str], Sequence[SmsProvider]]  # a number's providers, in failover order


@dataclass(frozen=True)
class OutgoingSms:
    """An SMS ready to go: its number, the text for providers that send text (None for a named
    SMS without one), each template-only provider's approved template (by the provider's name),
    and the client's sender by provider (``sms_sender``; one it does not name: the settings')."""

    to: str
    text: str | None
    approved: dict[str, Approved] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)
    template: str | None = None  # the named SMS it came from, if any

    def carried_by(self, provider: SmsProvider) -> bool:
        """Whether ``provider`` can send this: its approved template in its style, or the text."""
        if isinstance(provider, TemplateSender):
            found = self.approved.get(provider.name)
            return found is not None and found.style == provider.params_style
        return self.text is not None

    def sender_for(self, provider: str) -> str | None:
        """The client's sender for ``provider``, or None for the settings' own."""
        return self.senders.get(provider)

    @property
    def segments(self) -> int | None:
        """The parts its text takes (as Twilio counts them), or None without a text."""
        return None if self.text is None else segments.parts(self.text)

    @property
    def record(self) -> dict[str, str]:
        """The fields its status record has beside every notification's: ``segments``."""
        parts = self.segments
        return {} if parts is None else {"segments": str(parts)}

    def payload(self, client: str) -> dict[str, Any]:
        """As the notification's payload keeps it (JSON), for ``client``."""
        return {
            "client": client,
            "to": self.to,
            "template": self.template,
            "text": self.text,
            "approved": {p: {"id": a.id, "params": a.params} for p, a in self.approved.items()},
            "sender": self.senders,
        }

    @classmethod
    def read(cls, payload: dict[str, Any]) -> OutgoingSms:
        """The SMS a payload holds (:meth:`payload`'s, or a batch row's expanded)."""
        return cls(
            to=payload["to"],
            text=payload["text"],
            approved={p: Approved(a["id"], a["params"]) for p, a in payload["approved"].items()},
            senders=dict(payload["sender"]),
            template=payload["template"],
        )


def compose(
    *,
    to: str,
    text: str | None,
    template: str | None,
    data: dict[str, Any],
    templates: NamedSms,
    senders: dict[str, str],
    row: tuple[str | int, ...] = (),
) -> OutgoingSms:
    """The SMS a request asks for: its text, or its named SMS rendered with ``data``. 422 naming
    the field at fault; ``row`` is where in the body ``data`` is (a batch's row)."""
    if (text is None) == (template is None):
        raise Refused(
            "text", "give exactly one of text and template", detail="an SMS needs content"
        )
    if text is not None:
        return OutgoingSms(to, text, senders=senders)
    assert template is not None
    try:
        rendered = templates.render(template, data)
    except TemplateError as e:
        at = (e.field,) if e.field == "template" else (*row, e.field)
        raise Refused(at, e.reason, detail=e.detail) from None
    if rendered.text is not None and not 1 <= segments.characters(rendered.text) <= MAX_SMS_TEXT:
        raise Refused(
            (*row, "data"),
            f"the text rendered is {segments.characters(rendered.text)} characters as Twilio counts"
            f" them (an emoji counts two); 1 to {MAX_SMS_TEXT}",
            detail=f"template {template!r} renders no text an SMS can carry from this data",
        )
    return OutgoingSms(to, rendered.text, rendered.approved, senders, template)


def refuse_uncarried(sms: OutgoingSms, providers: Sequence[SmsProvider]) -> None:
    """422 when none of the number's ``providers`` can carry ``sms``: naming ``template`` for a
    named SMS, ``text`` for free text."""
    if any(sms.carried_by(provider) for provider in providers):
        return
    names = ", ".join(p.name for p in providers) or "none"
    if sms.template is None:
        raise Refused(
            "text",
            f"no provider for this number sends free text (its providers: {names}); send a"
            " named template that has their approved template",
            detail="nothing can carry this SMS to this number",
        )
    raise Refused(
        "template",
        f"no provider for this number can send template {sms.template!r} (its providers: "
        f"{names}): it needs a text, or the approved template of one of them",
        detail="nothing can carry this SMS to this number",
    )


def accept_sms(
    request: SmsRequest,
    *,
    client: str,
    senders: dict[str, str],
    policy: CaptchaPolicy,
    store: NotificationStore,
    templates: NamedSms,
    route: Route,
    queue: Enqueuer,
    test: bool = False,
    note: Note | None = None,
) -> Notification:
    """Check an SMS at the door (fraud guard, content, a provider that can carry it), store it
    with its segments, and queue it unless it is scheduled; ``note`` is told its id once it is
    accepted."""
    guard(request.to, policy, store, ("to",))
    sms = compose(
        to=request.to, text=request.text, template=request.template, data=request.data,
        templates=templates, senders=senders,
    )  # fmt: skip
    refuse_uncarried(sms, route(request.to))
    send_at = request.send_at.timestamp() if request.send_at else None
    if send_at is not None and send_at <= time.time():
        send_at = None  # due already: send now
    return store_and_queue(
        store, queue, client=client, kind=KIND, payload=sms.payload(client), send_at=send_at,
        reference=request.reference, test=test, note=note, extra=sms.record,
    )  # fmt: skip


def accept_sms_batch(
    request: SmsBatchRequest,
    *,
    client: str,
    senders: dict[str, str],
    policy: CaptchaPolicy,
    notifications: NotificationStore,
    store: BatchStore,
    templates: NamedSms,
    route: Route,
    queue: TaskQueue,
    max_pending: int,
    callback: bool,
    test: bool = False,
    note: Note | None = None,
) -> Batch:
    """Check every row at the door (the fraud guard, its data: 422 naming each bad row; a
    provider for each number that can send the template: 422 naming ``template``), then store
    the batch with each row's segments and queue its fan-out, or schedule it."""

    counted: set[str] = set()  # a refused batch counts once in /metrics, not once a row

    def check(index: int, row: SmsBatchRow) -> OutgoingSms:
        guard(row.to, policy, notifications, ("recipients", index, "to"), counted=counted)
        return compose(
            to=row.to, text=None, template=request.template, data=row.data,
            templates=templates, senders=senders, row=("recipients", index),
        )  # fmt: skip

    sent = check_rows(request.recipients, check)
    _refuse_uncarried_rows(sent, route)
    rows: list[Row] = [
        (row.to, row.data, row.reference, sms.record)
        for row, sms in zip(request.recipients, sent, strict=True)
    ]
    content = {"client": client, "template": request.template, "sender": senders}
    return store_batch(
        Rows(KIND, content, rows), client=client, send_at=request.send_at,
        reference=request.reference, store=store, queue=queue, max_pending=max_pending,
        callback=callback, test=test, note=note,
    )  # fmt: skip


def _refuse_uncarried_rows(sent: Sequence[OutgoingSms], route: Route) -> None:
    """422 naming ``template`` when some rows' numbers have no provider that can send it."""
    carried: dict[tuple[str, ...], bool] = {}  # by route: a few countries, many rows
    uncarried = []
    for index, sms in enumerate(sent):
        if index and index % YIELD_EVERY == 0:
            time.sleep(0)  # each number is parsed again: the web's other requests get a turn
        providers = route(sms.to)
        names = tuple(p.name for p in providers)
        if names not in carried:
            carried[names] = any(sms.carried_by(p) for p in providers)
        if not carried[names]:
            uncarried.append(index)
    if uncarried:
        shown = ", ".join(str(i) for i in uncarried[:10]) + (", …" if len(uncarried) > 10 else "")
        raise Refused(
            "template",
            f"no provider for the numbers of {len(uncarried)} rows ({shown}) can send template"
            f" {sent[0].template!r}: it needs a text, or the approved template of one of them",
            detail="nothing can carry this SMS to some of these numbers",
        )


class RowTexts(BatchContents):
    """An SMS batch's rows: the batch's template rendered with the row's data."""

    def __init__(self, store: BatchStore, templates: NamedSms) -> None:
        super().__init__(store)
        self._templates = templates

    def row(self, content: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """The row's SMS, as a single SMS's payload holds one."""
        sms = compose(
            to=payload["to"], text=None, template=content["template"], data=payload["data"],
            templates=self._templates, senders=content["sender"],
        )  # fmt: skip
        return sms.payload(content["client"])


def deliver_sms(d: Delivery, notification_id: str, *, lane: str = "") -> Outcome:
    """Send an SMS through the first of the number's providers that takes it, of those that can
    carry it: a template-only one its approved template (under the client's sign name, if it
    has one), any other the text (from the client's sender, if it has one).

    A batch's row is made its SMS first (``d.expand_sms``). A test key's is simulated from its
    number. When none of the number's providers can carry it any more (the settings changed
    since the door checked), it fails at once: no retry would change that.
    """

    def send(claimed: Attempt) -> Outcome:
        try:
            payload = d.expand_sms(claimed.payload)
        except PermanentProviderError as e:
            return claimed.failed_for_good(e)
        sms = OutgoingSms.read(payload)
        if payload.get("test"):
            return claimed.simulated(phone_outcome(sms.to))
        providers = d.sms(sms.to)
        route = [p for p in providers if sms.carried_by(p)]
        if not route:
            names = ", ".join(p.name for p in providers) or "none"
            return claimed.unsendable(
                f"no provider for this number can carry this SMS now (its providers: {names})"
            )
        # A vendor's per-number limit is its own: the next provider takes the client's SMS.
        return claimed.hand_over(route, partial(transmit, sms), limits_hand_over=True)

    return d.attempt(notification_id, send, lane=lane)


def transmit(sms: OutgoingSms, provider: SmsProvider) -> str:
    """Give ``sms`` to ``provider`` in the form it takes; the provider's id of the message."""
    sender = sms.sender_for(provider.name)
    if isinstance(provider, TemplateSender):
        approved = sms.approved[provider.name]
        return provider.send_template(
            to=sms.to, template_id=approved.id, params=approved.params, sign_name=sender
        )
    assert sms.text is not None  # carried_by said so
    if sender is None:  # an adapter that cannot send from another sender needs no keyword
        return provider.send_sms(to=sms.to, body=sms.text)
    return cast(SenderAware, provider).send_sms(to=sms.to, body=sms.text, sender=sender)


def check_templates(templates: NamedSms, providers: Sequence[SmsProvider]) -> None:
    """Stop the start-up when a named SMS gives a provider listed here an approved template it
    cannot send: in another style of parameters than its own, or to a provider that sends text
    (a table it would never read)."""
    by_name = {provider.name: provider for provider in providers}
    for name in templates.names():
        for listed, style in templates.shape(name).approved.items():
            provider = by_name.get(listed)
            if provider is None:
                continue  # a provider not used here: the same files serve other deployments
            where = f"NOTIFIER_TEMPLATES_DIR: sms/{name}.toml: [{listed}]"
            if not isinstance(provider, TemplateSender):
                raise ConfigError(f"{where}: {listed} sends text; give the template a text")
            if style != provider.params_style:
                table = "a table" if provider.params_style == "named" else "an array"
                raise ConfigError(
                    f"{where}: {listed} takes {provider.params_style} parameters: params is {table}"
                )
