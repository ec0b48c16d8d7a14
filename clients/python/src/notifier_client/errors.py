"""What the client raises.

::

    NotifierError                  the root: everything this package raises
    ├── APIError                   the service answered with an error (problem+json): status,
    │   │                          type, title, detail, errors (the fields at fault), retry_after
    │   ├── BadRequest (400)       the body is not a JSON object
    │   ├── Unauthorized (401)     no key, or an unknown one
    │   ├── Forbidden (403)        the key's client lacks the scope, or the bucket
    │   ├── NotFound (404)         an unknown id, or another client's
    │   ├── Conflict (409)         an Idempotency-Key reused with another body; a cancel too late
    │   ├── PayloadTooLarge (413)  the body is over the size limit
    │   ├── ValidationFailed (422) the body or query fails validation; ``errors`` names each field
    │   ├── RateLimited (429)      a limit; ``retry_after`` says when to try again
    │   ├── ServerError (5xx)      the service failed
    │   │   └── Unavailable (502, 503, 504)  nothing was promised: safe to send again with
    │   │                                     the same Idempotency-Key
    │   └── UnexpectedResponse     a success whose body is not what the route answers (a proxy's
    │                              page, say): whether the request did anything is unknown
    ├── ConnectionFailed           no answer came: refused, reset, or cut off mid-way
    │   └── TimedOut               no answer within the timeout
    └── WebhookVerificationError   a status callback's signature or timestamp does not verify

The client retries RateLimited, Unavailable and ConnectionFailed itself where that is safe; one
of them raised means the retries ran out (or the wait asked for was longer than allowed).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx


class NotifierError(Exception):
    """The root of this package's exceptions."""


@dataclass(frozen=True)
class FieldError:
    """One field at fault: where (``loc``, e.g. ``("body", "to", 0)``) and what is wrong."""

    loc: tuple[str | int, ...]
    msg: str


class APIError(NotifierError):
    """The service answered ``status`` with a problem (RFC 9457) instead of a result."""

    def __init__(
        self,
        *,
        status: int,
        type: str,
        title: str,
        detail: str,
        errors: tuple[FieldError, ...] = (),
        retry_after: float | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors
        self.retry_after = retry_after
        self.response = response


class BadRequest(APIError):
    """400: the body is not JSON, or not a JSON object."""


class Unauthorized(APIError):
    """401: no key, or a key the service does not know."""


class Forbidden(APIError):
    """403: the key's client lacks the scope, or the bucket."""


class NotFound(APIError):
    """404: no such id for this client."""


class Conflict(APIError):
    """409: an Idempotency-Key reused with a different body, or a cancel that came too late (a
    send whose first try is still being handled is asked again, not raised, while retries last)."""


class PayloadTooLarge(APIError):
    """413: the body is over the size limit."""


class ValidationFailed(APIError):
    """422: the request fails validation; ``errors`` names each field at fault."""


class RateLimited(APIError):
    """429: over a limit; ``retry_after`` is the seconds the service asks to wait."""


class ServerError(APIError):
    """5xx: the service failed."""


class Unavailable(ServerError):
    """502, 503, 504: nothing was promised; sending again with the same key is safe."""


class UnexpectedResponse(APIError):
    """A success whose body this client cannot read as the route's answer: something in front
    of the service (a captive portal, a proxy) may have answered instead."""


class ConnectionFailed(NotifierError):
    """No answer came: the connection was refused, reset, or cut off mid-way."""


class TimedOut(ConnectionFailed):
    """No answer came within the timeout."""


class WebhookVerificationError(NotifierError):
    """A status callback's signature, timestamp or body does not verify: refuse it."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """The seconds ``Retry-After`` asks for, or None: the service sends whole seconds, a proxy
    in front of it may send an HTTP date (RFC 9110, 10.2.3), counted from now."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # An HTTP date is GMT, whatever form it takes (asctime's, or -0000, name none).
        seconds = when.replace(tzinfo=when.tzinfo or UTC).timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds else None  # NaN: none


def unexpected(response: httpx.Response, error: Exception) -> UnexpectedResponse:
    """The exception for a success whose body is not the route's answer."""
    return UnexpectedResponse(
        status=response.status_code,
        type="about:blank",
        title=response.reason_phrase,
        detail=f"an answer this client cannot read ({type(error).__name__}: {error}): "
        + response.text[:200],
        response=response,
    )


def api_error(response: httpx.Response) -> APIError:
    """The exception for an error answer, from its problem+json body when it has one."""
    status = response.status_code
    problem = _problem(response)
    found = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return found(
        status=status,
        type=str(problem.get("type", "about:blank")),
        title=str(problem.get("title") or response.reason_phrase),
        detail=str(problem.get("detail") or response.text[:500]),
        errors=tuple(
            FieldError(tuple(e.get("loc", ())), str(e.get("msg", "")))
            for e in problem.get("errors") or ()
            if isinstance(e, dict)
        ),
        retry_after=retry_after(response),
        response=response,
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    # A proxy in front of the service may answer with HTML: then there is no problem to read.
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def transport_error(error: httpx.TransportError) -> ConnectionFailed:
    """The exception for an attempt that got no answer."""
    kind = TimedOut if isinstance(error, httpx.TimeoutException) else ConnectionFailed
    return kind(f"{type(error).__name__}: {error}")
