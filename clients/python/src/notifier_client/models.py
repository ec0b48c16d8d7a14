"""What goes in (TypedDicts, checked by a type checker) and what comes back (frozen dataclasses).

Results keep the fields this version knows and ignore any the service adds later; timestamps
are aware ``datetime`` objects.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict, TypeVar

Status = Literal[
    "scheduled", "queued", "sending", "retrying", "sent", "failed", "cancelled",
    "delivered", "undelivered", "suppressed",
]  # fmt: skip
BatchStatus = Literal["scheduled", "queued", "sending", "done", "cancelled"]
Locale = Literal["zh-CN", "en"]


class Mail(TypedDict, total=False):
    """``POST /v1/mail``: 1 to 50 recipients in all, and one of text, html, template."""

    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: str
    subject: str
    text: str
    html: str
    template: str
    data: dict[str, Any]
    send_at: datetime  # aware, at most 30 days ahead
    reference: str  # your label, shown in the status record: never personal data
    unsubscribe: bool


class Sms(TypedDict, total=False):
    """``POST /v1/sms`` besides the number: one of text and template."""

    text: str  # 1 to 1,600 characters
    template: str  # a named SMS, rendered with data
    data: dict[str, Any]
    send_at: datetime  # aware, at most 30 days ahead
    reference: str  # your label, shown in the status record: never personal data


class SmsRecipient(TypedDict):
    """One row of an SMS batch: its own SMS, the batch's template with this row's data."""

    to: str  # E.164
    data: NotRequired[dict[str, Any]]
    reference: NotRequired[str]


class SmsBatchOptions(TypedDict, total=False):
    """``POST /v1/sms/batch`` besides its template and rows."""

    send_at: datetime
    reference: str


class CaptchaOptions(TypedDict, total=False):
    """What a captcha send may say besides the recipient and purpose."""

    locale: Locale  # the service's default is zh-CN
    client_ip: str  # the end user's address, for per-address limits
    reference: str


class Recipient(TypedDict):
    """One row of a batch: its own mail, from the batch's content and this row's data."""

    to: str
    data: NotRequired[dict[str, Any]]
    reference: NotRequired[str]


class BatchContent(TypedDict, total=False):
    """``POST /v1/mail/batch`` less its rows: a template, or subject with text and/or html."""

    template: str
    subject: str
    text: str
    html: str
    send_at: datetime
    reference: str


class QiniuUpload(TypedDict, total=False):
    """``POST /v1/uploads/qiniu/token``, besides the bucket."""

    key: str
    key_prefix: str
    expires_in: int
    insert_only: bool
    fsize_limit: int
    mime_limit: str
    callback_url: str
    callback_body: str
    return_body: str


class S3Upload(TypedDict, total=False):
    """``POST /v1/uploads/<store>/token`` of every form store (``s3``, ``oss``, ``cos``,
    ``gcs``), besides the bucket."""

    key: str
    key_prefix: str
    expires_in: int
    content_type: str
    max_size: int


@dataclasses.dataclass(frozen=True)
class Accepted:
    """A send was accepted (202). ``replayed``: the answer to an earlier request with the same
    ``idempotency_key``, nothing sent again."""

    id: str
    status: Literal["queued", "scheduled"]
    idempotency_key: str = ""
    replayed: bool = False


@dataclasses.dataclass(frozen=True)
class CaptchaAccepted(Accepted):
    """A code is on its way; it expires in ``expires_in`` s, another may follow after
    ``resend_after`` s."""

    expires_in: int = 0
    resend_after: int = 0


@dataclasses.dataclass(frozen=True)
class BatchAccepted(Accepted):
    """A batch of ``total`` rows was accepted."""

    total: int = 0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether a code was right; why not, and how many tries are left, when it was not."""

    valid: bool
    reason: Literal["mismatch", "expired", "too_many_attempts"] | None = None
    attempts_left: int | None = None


@dataclasses.dataclass(frozen=True)
class SoftBounce:
    """The last deferral a mail got: the recipient's server (or the mail provider) says it is
    still trying. Its status does not move for one."""

    status: str  # a DSN's, 4.2.2; a provider's event: its status, or the kind of delay
    diagnostic: str  # the remote server's reply, addresses masked
    at: datetime


@dataclasses.dataclass(frozen=True)
class Complaint:
    """The first time a recipient marked the mail as spam, as the mail provider reported it."""

    type: str | None  # the feedback type (RFC 5965: abuse, fraud, virus, other...), if known
    at: datetime


@dataclasses.dataclass(frozen=True)
class Notification:
    """The status record of one notification (never its recipient or content)."""

    id: str
    kind: Literal["mail", "sms_captcha", "sms"]
    status: Status
    attempts: int
    provider: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None
    reference: str | None
    provider_ref: str | None
    test_code: str | None = None  # a test key's captcha only
    segments: int | None = None  # an SMS's parts (kind sms), as Twilio counts them
    soft_bounce: SoftBounce | None = None  # a mail's last deferral, if it had one
    complaint: Complaint | None = None  # a mail's first complaint, if it had one


@dataclasses.dataclass(frozen=True)
class BatchProgress:
    """A batch as ``GET /v1/batches/<id>`` shows it: its rows counted by status."""

    id: str
    status: BatchStatus
    total: int
    counts: dict[str, int]
    reference: str | None
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None


@dataclasses.dataclass(frozen=True)
class BatchRow:
    """One row of a batch: its notification's id and status (never its recipient)."""

    id: str
    status: Status
    reference: str | None
    error: str | None


@dataclasses.dataclass(frozen=True)
class QiniuToken:
    """A Qiniu upload token for the page to upload with."""

    token: str
    bucket: str
    key: str | None
    expires_at: datetime
    upload_url: str


@dataclasses.dataclass(frozen=True)
class S3Form:
    """A browser upload form: POST ``fields``, then the file as ``file``, to ``url``."""

    url: str
    fields: dict[str, str]
    bucket: str
    key: str | None
    expires_at: datetime


@dataclasses.dataclass(frozen=True)
class Suppression:
    """An address the client's mail is not sent to, and why."""

    address: str
    reason: Literal["bounced", "complained", "manual", "unsubscribed"]
    created_at: datetime


R = TypeVar("R")


def decode(cls: type[R], data: dict[str, Any], **extra: Any) -> R:
    """``cls`` from a JSON object: the fields it knows, timestamps and records within parsed,
    the rest ignored."""
    values: dict[str, Any] = {}
    for name, kind in _fields(cls):
        if name in data:
            value = data[name]
            if value is None or kind is None:
                values[name] = value
            elif kind is datetime:
                values[name] = datetime.fromisoformat(value)
            else:
                values[name] = decode(kind, value)
    return cls(**values, **extra)


_FIELDS: dict[type[Any], tuple[tuple[str, type[Any] | None], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[str, type[Any] | None], ...]:
    """Each field's name, and what it holds if it needs parsing: a timestamp (``datetime``) or
    a record (its dataclass); read once a class."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        _FIELDS[cls] = tuple((f.name, _parsed(hints[f.name])) for f in dataclasses.fields(cls))
    return _FIELDS[cls]


def _parsed(hint: Any) -> type[Any] | None:
    for kind in (hint, *typing.get_args(hint)):
        if kind is datetime or (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            return kind
    return None
