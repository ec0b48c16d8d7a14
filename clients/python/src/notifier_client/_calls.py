"""Each route as a ``Call`` (what to send, how to read the answer, whether repeating it is safe),
and the retry loop as a generator free of I/O, so the sync and async clients share both."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import uuid
from collections.abc import Callable, Generator, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from notifier_client.errors import (
    NotifierError,
    api_error,
    retry_after,
    transport_error,
    unexpected,
)
from notifier_client.models import (
    Accepted,
    BatchAccepted,
    BatchProgress,
    BatchRow,
    CaptchaAccepted,
    Notification,
    QiniuToken,
    S3Form,
    Suppression,
    Verdict,
    decode,
)

log = logging.getLogger("notifier_client")
R = TypeVar("R")
A = TypeVar("A", bound=Accepted)
Outcome = httpx.Response | httpx.TransportError
# Answers that promise nothing was done (or that it is safe to ask again with the same key).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures that leave no doubt the request never reached the service.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
CHANNELS = {"phone": "sms", "to": "mail"}  # a captcha's recipient field: its routes' channel
KEY_CHARACTERS = frozenset(map(chr, range(0x20, 0x7F)))  # an Idempotency-Key's: printable ASCII


@dataclasses.dataclass(frozen=True)
class Call(Generic[R]):
    """One request and how to read its answer.

    ``safe``: sending it again cannot do more than sending it once (a GET, a send with an
    Idempotency-Key, a token minted from nothing), so every failure in RETRY_STATUSES or of the
    connection is retried. Otherwise (a verify, a cancel) only a 429 or a request that surely
    never left is. ``missing``: how the route's own 404 ends its detail (problem+json), which
    is an answer (``read`` is given it), not an error; any other 404 (a proxy's page, or the
    service's for a path it does not serve: a base URL ending in /v1) is NotFound.
    ``route``: the path as logs show it, where the path holds personal data (an address).
    """

    method: str
    path: str
    read: Callable[[httpx.Response], R]
    body: Any = None
    params: Mapping[str, str] | None = None
    key: str | None = None
    safe: bool = False
    missing: str | None = None
    route: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.key} if self.key else {}

    def answered(self, response: httpx.Response) -> bool:
        """Whether ``response`` is the route's answer, to ``read``."""
        if response.is_success:
            return True
        if self.missing is None or response.status_code != 404:
            return False
        if not response.headers.get("Content-Type", "").startswith("application/problem+json"):
            return False
        with contextlib.suppress(ValueError, AttributeError):
            return str(response.json().get("detail", "")).endswith(self.missing)
        return False


@dataclasses.dataclass(frozen=True)
class Retries:
    """How often and how long to retry: exponential backoff with full jitter, a cap, and never
    sooner than ``Retry-After``; an answer that asks for more than ``max_retry_after`` seconds
    is raised at once (a captcha's resend interval is a minute: that wait is the caller's)."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 10.0

    def backoff(self, attempt: int) -> float:
        """A draw from 0 to base · 2^attempt, capped (AWS's "full jitter")."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def wait(self, call: Call[Any], attempt: int, outcome: Outcome) -> float | None:
        """Seconds to wait before trying ``call`` again after ``outcome``; None: do not."""
        if attempt >= self.max_retries:
            return None
        if isinstance(outcome, httpx.TransportError):
            retryable = call.safe or isinstance(outcome, UNSENT)
            return self.backoff(attempt) if retryable else None
        status = outcome.status_code
        # A 409 with Retry-After: the first request with this key is still being handled (a
        # key reused with another body has none), so the same key asked again gets its answer.
        in_progress = status == 409 and call.key is not None and retry_after(outcome) is not None
        if not in_progress and (status not in RETRY_STATUSES or not (call.safe or status == 429)):
            return None
        asked = retry_after(outcome)
        if asked is not None and asked > self.max_retry_after:
            return None
        return max(asked or 0.0, self.backoff(attempt))


def attempts(call: Call[R], retries: Retries) -> Generator[float, Outcome, R]:
    """Drive ``call``: yield the seconds to wait before each attempt, be sent its outcome;
    return the result, or raise what the last outcome means."""
    wait, attempt = 0.0, 0
    while True:
        outcome = yield wait
        if isinstance(outcome, httpx.Response) and call.answered(outcome):
            try:
                return call.read(outcome)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise unexpected(outcome, e) from e
        delay = retries.wait(call, attempt, outcome)
        if delay is None:
            raise _failure(outcome)
        log.info(
            "retrying %s %s in %.2f s (attempt %s failed: %s)",
            call.method, call.route or call.path, delay, attempt + 1, _said(outcome),
        )  # fmt: skip
        wait, attempt = delay, attempt + 1


def _failure(outcome: Outcome) -> NotifierError:
    if isinstance(outcome, httpx.Response):
        return api_error(outcome)
    error = transport_error(outcome)
    error.__cause__ = outcome
    return error


def _said(outcome: Outcome) -> str:
    if isinstance(outcome, httpx.Response):
        return str(outcome.status_code)
    return type(outcome).__name__


@dataclasses.dataclass(frozen=True)
class Page(Generic[R]):
    """One page of a list, and the cursor of the next (None: this was the last)."""

    items: tuple[R, ...]
    next: str | None


def next_page(call: Call[Page[R]], cursor: str) -> Call[Page[R]]:
    """The call for the page after ``call``'s."""
    return dataclasses.replace(call, params={**(call.params or {}), "cursor": cursor})


def _id(value: str) -> str:
    return quote(value, safe="")


def _json(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()}


def _reading(cls: type[R]) -> Callable[[httpx.Response], R]:
    return lambda response: decode(cls, response.json())


def _paging(cls: type[R]) -> Callable[[httpx.Response], Page[R]]:
    def read(response: httpx.Response) -> Page[R]:
        page = response.json()
        return Page(tuple(decode(cls, item) for item in page["items"]), page["next"])

    return read


def _send(path: str, body: Mapping[str, Any], key: str | None, cls: type[A]) -> Call[A]:
    # One key for the logical send, made here once, so that every retry carries the same.
    key = key or str(uuid.uuid4())
    if len(key) > 255 or not KEY_CHARACTERS.issuperset(key):
        raise ValueError("idempotency_key: 1 to 255 printable ASCII characters")

    def read(response: httpx.Response) -> A:
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return decode(cls, response.json(), idempotency_key=key, replayed=replayed)

    return Call("POST", path, read, body=_json(body), key=key, safe=True)


def send_mail(mail: Mapping[str, Any], key: str | None) -> Call[Accepted]:
    return _send("/v1/mail", mail, key, Accepted)


def send_batch(
    content: Mapping[str, Any], recipients: list[Any], key: str | None
) -> Call[BatchAccepted]:
    return _send("/v1/mail/batch", {**content, "recipients": recipients}, key, BatchAccepted)


def send_sms(to: str, sms: Mapping[str, Any], key: str | None) -> Call[Accepted]:
    return _send("/v1/sms", {"to": to, **sms}, key, Accepted)


def send_sms_batch(
    template: str, recipients: list[Any], options: Mapping[str, Any], key: str | None
) -> Call[BatchAccepted]:
    body = {"template": template, **options, "recipients": recipients}
    return _send("/v1/sms/batch", body, key, BatchAccepted)


def send_captcha(
    field: str, recipient: str, purpose: str, options: Mapping[str, Any], key: str | None
) -> Call[CaptchaAccepted]:
    """A code by SMS (``field`` ``phone``) or by mail (``to``)."""
    body = {field: recipient, "purpose": purpose, **options}
    return _send(f"/v1/{CHANNELS[field]}/captcha", body, key, CaptchaAccepted)


def verify_captcha(field: str, recipient: str, purpose: str, code: str) -> Call[Verdict]:
    # Not safe to repeat: a right code is good once, so a repeat of one that was checked says no.
    body = {field: recipient, "purpose": purpose, "code": code}
    return Call("POST", f"/v1/{CHANNELS[field]}/captcha/verify", _reading(Verdict), body=body)


def qiniu_token(bucket: str, options: Mapping[str, Any]) -> Call[QiniuToken]:
    return _mint("qiniu", bucket, options, QiniuToken)


def s3_form(bucket: str, options: Mapping[str, Any]) -> Call[S3Form]:
    return _mint("s3", bucket, options, S3Form)


def upload_form(store: str, bucket: str, options: Mapping[str, Any]) -> Call[S3Form]:
    return _mint(store, bucket, options, S3Form)


def _mint(store: str, bucket: str, options: Mapping[str, Any], cls: type[R]) -> Call[R]:
    # Minted in the request from nothing stored: asking twice is as good as asking once.
    path = f"/v1/uploads/{_id(store)}/token"
    return Call("POST", path, _reading(cls), body={"bucket": bucket, **options}, safe=True)


def notification(notification_id: str) -> Call[Notification]:
    return Call(
        "GET", f"/v1/notifications/{_id(notification_id)}", _reading(Notification), safe=True
    )


def cancel_notification(notification_id: str) -> Call[Notification]:
    path = f"/v1/notifications/{_id(notification_id)}"
    return Call("DELETE", path, _reading(Notification))


def batch(batch_id: str) -> Call[BatchProgress]:
    return Call("GET", f"/v1/batches/{_id(batch_id)}", _reading(BatchProgress), safe=True)


def cancel_batch(batch_id: str) -> Call[BatchProgress]:
    return Call("DELETE", f"/v1/batches/{_id(batch_id)}", _reading(BatchProgress))


def batch_rows(batch_id: str, status: str | None) -> Call[Page[BatchRow]]:
    path = f"/v1/batches/{_id(batch_id)}/notifications"
    params = {"status": status} if status else None
    return Call("GET", path, _paging(BatchRow), params=params, safe=True)


def suppressions() -> Call[Page[Suppression]]:
    return Call("GET", "/v1/suppressions", _paging(Suppression), safe=True)


SUPPRESSION = "/v1/suppressions/{address}"  # as logs show it: never the address


def suppression(address: str) -> Call[Suppression | None]:
    def read(response: httpx.Response) -> Suppression | None:
        return None if response.status_code == 404 else decode(Suppression, response.json())

    path = f"/v1/suppressions/{quote(address, safe='@')}"
    missing = "is not on the suppression list"  # the route's 404 (api/suppressions.py)
    return Call("GET", path, read, safe=True, missing=missing, route=SUPPRESSION)


def suppress(address: str) -> Call[Suppression]:
    # Adding an address twice is harmless (the service keeps its entry): safe to repeat.
    body = {"address": address, "reason": "manual"}
    return Call("POST", "/v1/suppressions", _reading(Suppression), body=body, safe=True)


def unsuppress(address: str) -> Call[Suppression]:
    path = f"/v1/suppressions/{quote(address, safe='@')}"
    return Call("DELETE", path, _reading(Suppression), route=SUPPRESSION)
