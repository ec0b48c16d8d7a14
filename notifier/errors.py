"""Notifier's exceptions.

::

    NotifierError
    ├── ProviderError                a provider could not deliver
    │   ├── TransientProviderError   connection refused or reset, timeout, SMTP 4xx, HTTP 429/5xx:
    │   │                            retrying later may help, so the task retries with backoff
    │   └── PermanentProviderError   SMTP 5xx for the recipient, an invalid number: retrying
    │                                cannot help, so the notification fails at once
    ├── TemplateError                a named mail template cannot be rendered with the data given
    │   ├── UnknownTemplate          no template has that name
    │   └── TemplateDataError        the data lacks a variable, or the template fails on it
    ├── Refusal                      a service refuses what it was asked, in the domain's terms;
    │   │                            the API layer answers each kind once (api/problems.py)
    │   ├── Refused                  a field of the request is at fault (422 naming it);
    │   │                            asking again the same way cannot help
    │   ├── NotAllowed               the caller may not do this (403); asking again cannot help
    │   ├── Limited                  a limit refuses it for now (429): asking again after
    │   │                            ``retry_after`` seconds may be taken
    │   └── Unavailable              a part it needs is missing or not ready (503): nothing was
    │                                done; asking again later may help (``retry_after`` if known)
    └── ApiError                     an HTTP request is refused; turned into problem+json
        ├── BadRequest (400) · Unauthorized (401) · Forbidden (403) · NotFound (404)
        ├── Conflict (409) · Unprocessable (422) · TooManyRequests (429)
        └── ServiceUnavailable (503) nothing was accepted: Redis or the broker is down

``config.ConfigError`` stands apart: it is raised before there is a service to speak for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class NotifierError(Exception):
    """The root of Notifier's own exceptions."""


class ProviderError(NotifierError):
    """A provider could not deliver; ``provider`` names it."""

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class TransientProviderError(ProviderError):
    """Delivery failed for a reason that may pass; retrying later helps."""


class PermanentProviderError(ProviderError):
    """Delivery failed for a reason that will not pass; retrying does not help."""


class NotForThisProvider(PermanentProviderError):
    """This provider cannot carry the message (SES and an address that needs SMTPUTF8; Twilio's
    21612, a To and From that cannot go together), which another may: the next provider's
    turn, and failed for good when none could."""


class TemplateError(NotifierError):
    """A template cannot be rendered: ``detail`` says which, ``reason`` what is wrong.

    ``field`` names what the caller gave that is at fault (``template`` or ``data``); the mail
    service turns it into a 422 naming that field. Retrying cannot help.
    """

    field = "data"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


class UnknownTemplate(TemplateError):
    """No template has the name asked for."""

    field = "template"


class TemplateDataError(TemplateError):
    """The data lacks a variable the template uses, or the template fails on it."""


@dataclass(frozen=True)
class Fault:
    """One thing wrong with a request: where in it (``field``, a path of names and indexes)
    and what (``message``)."""

    field: tuple[str | int, ...]
    message: str


class Refusal(NotifierError):
    """A service refuses what it was asked; ``detail`` says why, for the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Refused(Refusal):
    """A field of the request is at fault: ``field`` names it (a name, or a path such as
    ``("recipients", 3, "data")``), ``message`` says what is wrong; ``faults`` holds every one
    when several are named (:meth:`of`)."""

    def __init__(
        self,
        field: str | tuple[str | int, ...],
        message: str,
        *,
        detail: str = "the body is not valid",
    ) -> None:
        super().__init__(detail)
        path = (field,) if isinstance(field, str) else field
        self.faults: tuple[Fault, ...] = (Fault(path, message),)

    @classmethod
    def of(cls, detail: str, faults: Sequence[Fault]) -> Refused:
        """One refusal naming every fault in ``faults`` (at least one)."""
        refused = cls(faults[0].field, faults[0].message, detail=detail)
        refused.faults = tuple(faults)
        return refused


class NotAllowed(Refusal):
    """The caller may not do what it asked (a bucket or key not its own)."""


class Limited(Refusal):
    """A limit refuses the request for now; it may be taken after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(Refusal):
    """Something the request needs is missing or not ready, and nothing was done; asking again
    after ``retry_after`` seconds (when known) may help."""

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FieldError:
    """One entry of a problem's ``errors``: where (``loc``) and what is wrong (``msg``)."""

    loc: tuple[str | int, ...]
    msg: str

    def as_json(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg}


class ApiError(NotifierError):
    """An HTTP request is refused with ``status``; rendered as problem+json."""

    status = 500
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class Unprocessable(ApiError):
    status, title = 422, "Unprocessable Content"


class TooManyRequests(ApiError):
    status, title = 429, "Too Many Requests"


class ServiceUnavailable(ApiError):
    status, title = 503, "Service Unavailable"
