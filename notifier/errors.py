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

    @classmethod
    def field(cls, name: str, msg: str) -> Unprocessable:
        """The body's field ``name`` is at fault."""
        return cls("the body is not valid", errors=[FieldError(("body", name), msg)])


class TooManyRequests(ApiError):
    status, title = 429, "Too Many Requests"


class ServiceUnavailable(ApiError):
    status, title = 503, "Service Unavailable"
