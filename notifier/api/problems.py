"""Every error as ``application/problem+json`` (RFC 9457), in the contract's shape."""

from __future__ import annotations

import logging

import kombu.exceptions
import redis
from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from notifier.errors import (
    ApiError,
    FieldError,
    Forbidden,
    Limited,
    NotAllowed,
    Refusal,
    Refused,
    ServiceUnavailable,
    TooManyRequests,
    Unavailable,
    Unprocessable,
)
from notifier.redisconn import refusal

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
RETRY_AFTER_503 = "5"  # seconds a 503 asks a client to wait when no other wait is known


def problem(
    status: int,
    title: str,
    detail: str,
    errors: tuple[FieldError, ...] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response; a 503 always says when to retry (``Retry-After``)."""
    response = Response(document(status, title, detail, errors), status=status, mimetype=PROBLEM)
    response.headers.update(headers or {})
    if status == 503 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = RETRY_AFTER_503
    return response


def document(status: int, title: str, detail: str, errors: tuple[FieldError, ...] = ()) -> str:
    """The problem+json body."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [e.as_json() for e in errors],
    }
    return json.dumps(body)


def server_refusal(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer for a request the server refused before the app saw it."""
    body = document(status, reason, detail or reason).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _api_error(e: ApiError) -> Response:
    return problem(e.status, e.title, e.detail, e.errors, e.headers)


def answer(e: Refusal) -> ApiError:
    """The HTTP answer to a service's refusal: the one place a refusal gets its status, its
    ``Retry-After`` and its fields' place in the body."""
    if isinstance(e, Refused):
        errors = [FieldError(("body", *f.field), f.message) for f in e.faults]
        return Unprocessable(e.detail, errors=errors)
    if isinstance(e, Limited):
        return TooManyRequests(e.detail, headers={"Retry-After": str(e.retry_after)})
    if isinstance(e, Unavailable):
        wait = {} if e.retry_after is None else {"Retry-After": str(e.retry_after)}
        return ServiceUnavailable(e.detail, headers=wait)
    if isinstance(e, NotAllowed):
        return Forbidden(e.detail)
    raise TypeError(f"no answer for {type(e).__name__}")  # a Refusal added without one


def _refusal(e: Refusal) -> Response:
    return _api_error(answer(e))


def _http_error(e: HTTPException) -> Response:
    status = e.code or 500
    allowed = getattr(e, "valid_methods", None)
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return problem(status, e.name, e.description or e.name, headers=headers)


def _unavailable(e: Exception) -> Response:
    # Redis that answered and refused (full, a replica, a disk it cannot save to) is not one that
    # cannot be reached: the operator's fix differs, so the answer names it.
    refused = refusal(e)
    if refused is not None:
        cause = str(refused)
        log.warning("answered 503: %s", cause)
    else:
        cause = f"{'Redis' if isinstance(e, redis.RedisError) else 'the broker'} cannot be reached"
        log.warning("backend unreachable: %s: %s", type(e).__name__, e)
    return problem(
        503,
        "Service Unavailable",
        f"{cause}; nothing was accepted, retry later",
    )


def _unexpected(e: Exception) -> Response:
    log.exception("unhandled error")
    return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(Refusal, _refusal)
    app.register_error_handler(HTTPException, _http_error)
    for unavailable in (redis.RedisError, kombu.exceptions.OperationalError):
        app.register_error_handler(unavailable, _unavailable)
    app.register_error_handler(Exception, _unexpected)
