"""What a provider is: the protocols every adapter implements, and the message it is handed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel


@dataclass(frozen=True)
class OutgoingMail:
    """A mail ready to go: rendered, validated, addressed."""

    notification_id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: str | None = None
    text: str | None = None
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())
    # The envelope sender (SMTP MAIL FROM), where bounces go; None: the From address.
    envelope_from: str | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every envelope recipient, Bcc included."""
        return self.to + self.cc + self.bcc


class MessageRef(str):
    """The provider's id of a mail it took, with the recipients it refused while it took the
    mail for the others (an SMTP relay's RCPT refusals of some of several): address → its
    reply (``550 5.1.1 …``). A plain ``str`` is a ref with none refused."""

    refused: Mapping[str, str]

    def __new__(cls, ref: str, refused: Mapping[str, str]) -> MessageRef:
        made = super().__new__(cls, ref)
        made.refused = dict(refused)
        return made

    def __getnewargs__(self) -> tuple[str, Mapping[str, str]]:  # type: ignore[override]
        # copy and pickle make it again with both (str's own gives the id alone).
        return str(self), self.refused


@runtime_checkable
class MailProvider(Protocol):
    """Delivers one mail.

    ``send_mail`` returns the provider's id of the message (for SMTP, the Message-ID; a
    :class:`MessageRef` when it refused some of the recipients).
    It raises :class:`~notifier.errors.TransientProviderError` when retrying later may help
    and :class:`~notifier.errors.PermanentProviderError` when it cannot; never anything else
    for a delivery failure. Implementations keep their connections open between calls and
    give every network call a timeout.
    """

    name: str

    def send_mail(self, *, message: OutgoingMail) -> str: ...

    def close(self) -> None:
        """Release connections; the provider may be used again afterwards."""
        ...


@runtime_checkable
class SmsProvider(Protocol):
    """Delivers one text message.

    ``send_sms`` takes an E.164 number and the text and returns the provider's message id.
    It raises :class:`~notifier.errors.TransientProviderError` when retrying (or handing the
    message to the next provider) may help, and :class:`~notifier.errors.PermanentProviderError`
    when no provider can deliver it (an invalid number). Every call has a timeout.

    An adapter that can send from another sender than its settings' also takes ``sender`` (a
    keyword, a string): the built-in ones do (Twilio: a ``From`` number or sender id, or a
    Messaging Service SID). It is given only when the client's ``sms_sender`` names this
    provider, so an adapter without the keyword keeps working for every other client.
    """

    name: str

    def send_sms(self, *, to: str, body: str) -> str: ...

    def close(self) -> None:
        """Release connections; the provider may be used again afterwards."""
        ...


class SenderAware(Protocol):
    """An :class:`SmsProvider` that takes ``sender`` (the built-in ones do): what a caller who
    was given a client's sender for it sees it as."""

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str: ...


@runtime_checkable
class CaptchaSender(Protocol):
    """Sends a captcha through the vendor's approved template; returns the vendor's message id.

    Raises :class:`PermanentProviderError` for a number no provider can reach,
    :class:`OperatorError` (logged at ERROR) for what the operator must fix, and
    :class:`TransientProviderError` for the rest. ``product``, ``locale`` and ``purpose`` are
    there for the adapter to choose a template; the text itself is the vendor's.
    """

    name: str

    def send_captcha(
        self, *, to: str, code: str, minutes: int, product: str, locale: str, purpose: str
    ) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class TemplateSender(Protocol):
    """Sends only the templates the vendor's console approved (Aliyun, Tencent): a named SMS's
    approved template for this provider, never free text; returns the vendor's message id.

    ``params_style`` says how its templates take their parameters: ``named`` (Aliyun's
    ``TemplateParam``, a JSON object) or ``ordered`` (Tencent's ``TemplateParamSet``, a list);
    ``params`` comes in that style. ``sign_name`` is the approved signature the text is sent
    under; None: the settings'. Raises as :class:`CaptchaSender` does: permanent for a number no
    provider can reach, :class:`OperatorError` (a transient error, logged at ERROR) for what the
    operator must fix (an id or sign name the console does not know, parameters that do not
    fit), transient for the rest.
    """

    name: str

    @property
    def params_style(self) -> Literal["named", "ordered"]: ...

    def send_template(
        self,
        *,
        to: str,
        template_id: str,
        params: Mapping[str, str] | Sequence[str],
        sign_name: str | None = None,
    ) -> str: ...

    def close(self) -> None: ...


class UploadAsk(Protocol):
    """What every upload request has (``UploadTokenRequest``, ``S3UploadRequest``)."""

    bucket: str
    key: str | None
    key_prefix: str | None
    expires_in: int

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...


class UploadStore(Protocol):
    """A cloud store that lets a browser upload with what Notifier mints (Qiniu, S3, OSS, COS, GCS).

    Pure computation: minting signs a policy and calls no one. ``request`` is the body model
    the store's route and task take; ``check`` raises a 422 for what the model alone cannot
    see; ``missing`` names the settings still to set (or None); ``mint`` makes the answer.
    What keys may be, and what the client's prefix confines, is not a store's to decide: the
    one path every store takes (:func:`notifier.services.uploads.mint_upload`) checks it before
    ``check``, and hands ``mint`` a ``key_prefix`` ending in "/" (:mod:`notifier.objectkeys`).
    """

    @property
    def name(self) -> str:
        """In the route (``/v1/uploads/<name>/token``), and the client's ``buckets`` and
        ``key_prefixes`` entries (which the one path reads, not the store)."""
        ...

    @property
    def title(self) -> str:
        """In messages."""
        ...

    @property
    def request(self) -> type[BaseModel]:
        """The body model: its fields include :class:`UploadAsk`'s."""
        ...

    def check(self, request: Any, *, require_https: bool) -> None: ...

    def missing(self) -> str | None: ...

    def mint(self, request: Any) -> BaseModel: ...
