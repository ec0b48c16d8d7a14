"""``Client`` and ``AsyncClient``: every route of Notifier's API, one method each.

The two differ only in how they wait and send; what each route sends, how its answer is read
and when it is retried is in ``_calls`` and shared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack

import httpx

from notifier_client import _calls as calls
from notifier_client._calls import Call, Outcome, Page, Retries
from notifier_client.models import (
    Accepted,
    BatchAccepted,
    BatchContent,
    BatchProgress,
    BatchRow,
    CaptchaAccepted,
    CaptchaOptions,
    Mail,
    Notification,
    QiniuToken,
    QiniuUpload,
    Recipient,
    S3Form,
    S3Upload,
    Sms,
    SmsBatchOptions,
    SmsRecipient,
    Status,
    Suppression,
    Verdict,
)

R = TypeVar("R")
VERSION = "0.1.0"


class Settings(TypedDict, total=False):
    """What a client may be made with besides its URL and key (the defaults in brackets)."""

    timeout: float | httpx.Timeout  # seconds for each attempt [10]
    max_retries: int  # retries after the first attempt [3]
    backoff_base: float  # seconds: the first retry waits up to this, each next up to twice [0.5]
    backoff_cap: float  # seconds: no wait is drawn from more than this [8]
    max_retry_after: float  # seconds: a longer Retry-After is raised, not waited for [10]


class _Configured:
    """What both clients share: their retries and the options of their httpx client."""

    def __init__(self, base_url: str, api_key: str, settings: Settings) -> None:
        defaults = Retries()
        self._retries = Retries(
            settings.get("max_retries", defaults.max_retries),
            settings.get("backoff_base", defaults.backoff_base),
            settings.get("backoff_cap", defaults.backoff_cap),
            settings.get("max_retry_after", defaults.max_retry_after),
        )
        self._options: dict[str, Any] = {
            "base_url": base_url,
            "timeout": settings.get("timeout", 10.0),
            "headers": {
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"notifier-client/{VERSION}",
            },
        }


class Client(_Configured):
    """A client of Notifier's API, over one pool of connections (close it, or use ``with``).

    ``base_url`` is the service's (``http://127.0.0.1:8000``), ``api_key`` a key of yours.
    ``timeout`` is seconds (or an ``httpx.Timeout``) for each attempt. A send is retried up to
    ``max_retries`` times with the same Idempotency-Key (see ``Retries``). ``transport`` replaces
    httpx's own (an ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        super().__init__(base_url, api_key, settings)
        self._http = httpx.Client(transport=transport, **self._options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _run(self, call: Call[R]) -> R:
        steps = calls.attempts(call, self._retries)
        wait = next(steps)
        while True:
            if wait:
                time.sleep(wait)
            outcome: Outcome
            try:
                outcome = self._http.request(
                    call.method, call.path, json=call.body, params=call.params, headers=call.headers
                )
            except httpx.TransportError as e:
                outcome = e
            try:
                wait = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _pages(self, call: Call[Page[R]]) -> Iterator[R]:
        while True:
            page = self._run(call)
            yield from page.items
            if page.next is None:
                return
            call = calls.next_page(call, page.next)

    def send_mail(self, *, idempotency_key: str | None = None, **mail: Unpack[Mail]) -> Accepted:
        """Send a mail now, or at ``send_at``."""
        return self._run(calls.send_mail(mail, idempotency_key))

    def send_batch(
        self,
        recipients: Sequence[Recipient],
        *,
        idempotency_key: str | None = None,
        **content: Unpack[BatchContent],
    ) -> BatchAccepted:
        """Send a mail of its own to each of up to 10,000 recipients."""
        return self._run(calls.send_batch(content, list(recipients), idempotency_key))

    def get_batch(self, batch_id: str) -> BatchProgress:
        """A batch's progress: its status and its rows counted by status."""
        return self._run(calls.batch(batch_id))

    def batch_rows(self, batch_id: str, *, status: Status | None = None) -> Iterator[BatchRow]:
        """Every row of a batch (of one status, if given), in order, page after page."""
        return self._pages(calls.batch_rows(batch_id, status))

    def cancel_batch(self, batch_id: str) -> BatchProgress:
        """Cancel what of a batch has not gone out (Conflict once it is done)."""
        return self._run(calls.cancel_batch(batch_id))

    def get_notification(self, notification_id: str) -> Notification:
        """The status record of a notification."""
        return self._run(calls.notification(notification_id))

    def cancel_notification(self, notification_id: str) -> Notification:
        """Cancel a scheduled notification (Conflict once it is past that)."""
        return self._run(calls.cancel_notification(notification_id))

    def send_sms(
        self, to: str, *, idempotency_key: str | None = None, **sms: Unpack[Sms]
    ) -> Accepted:
        """Text ``to`` (E.164) now, or at ``send_at``: ``text``, or a named ``template`` with
        ``data``."""
        return self._run(calls.send_sms(to, sms, idempotency_key))

    def send_sms_batch(
        self,
        template: str,
        recipients: Sequence[SmsRecipient],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SmsBatchOptions],
    ) -> BatchAccepted:
        """Text a named SMS of its own to each of up to 10,000 recipients."""
        return self._run(calls.send_sms_batch(template, list(recipients), options, idempotency_key))

    def send_sms_captcha(
        self,
        phone: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[CaptchaOptions],
    ) -> CaptchaAccepted:
        """Text a code to ``phone`` (E.164) for ``purpose``."""
        return self._run(calls.send_captcha("phone", phone, purpose, options, idempotency_key))

    def verify_sms_captcha(self, phone: str, purpose: str, code: str) -> Verdict:
        """Whether ``code`` is the one texted to ``phone`` (a code is good once)."""
        return self._run(calls.verify_captcha("phone", phone, purpose, code))

    def send_mail_captcha(
        self,
        to: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[CaptchaOptions],
    ) -> CaptchaAccepted:
        """Mail a code to ``to`` for ``purpose``."""
        return self._run(calls.send_captcha("to", to, purpose, options, idempotency_key))

    def verify_mail_captcha(self, to: str, purpose: str, code: str) -> Verdict:
        """Whether ``code`` is the one mailed to ``to`` (a code is good once)."""
        return self._run(calls.verify_captcha("to", to, purpose, code))

    def qiniu_token(self, bucket: str, **options: Unpack[QiniuUpload]) -> QiniuToken:
        """A Qiniu upload token for one of your buckets."""
        return self._run(calls.qiniu_token(bucket, options))

    def s3_form(self, bucket: str, **options: Unpack[S3Upload]) -> S3Form:
        """An S3 browser upload form (a presigned POST) for one of your buckets."""
        return self._run(calls.s3_form(bucket, options))

    def upload_form(self, store: str, bucket: str, **options: Unpack[S3Upload]) -> S3Form:
        """A browser upload form for one of your buckets in ``store`` (``s3``, ``oss``, ``cos``,
        ``gcs``, or any store the service registers)."""
        return self._run(calls.upload_form(store, bucket, options))

    def suppressions(self) -> Iterator[Suppression]:
        """Every entry of your suppression list, page after page."""
        return self._pages(calls.suppressions())

    def get_suppression(self, address: str) -> Suppression | None:
        """The suppression list's entry for ``address``; None when it is not on it."""
        return self._run(calls.suppression(address))

    def suppress(self, address: str) -> Suppression:
        """Stop all mail to ``address``; its entry as it is now."""
        return self._run(calls.suppress(address))

    def unsuppress(self, address: str) -> Suppression:
        """Mail ``address`` again; the entry removed (NotFound when it was not on the list)."""
        return self._run(calls.unsuppress(address))


class AsyncClient(_Configured):
    """``Client`` for asyncio: the same methods, awaited (and ``async for`` over the lists)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        super().__init__(base_url, api_key, settings)
        self._http = httpx.AsyncClient(transport=transport, **self._options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _run(self, call: Call[R]) -> R:
        steps = calls.attempts(call, self._retries)
        wait = next(steps)
        while True:
            if wait:
                await asyncio.sleep(wait)
            outcome: Outcome
            try:
                outcome = await self._http.request(
                    call.method, call.path, json=call.body, params=call.params, headers=call.headers
                )
            except httpx.TransportError as e:
                outcome = e
            try:
                wait = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _pages(self, call: Call[Page[R]]) -> AsyncIterator[R]:
        while True:
            page = await self._run(call)
            for item in page.items:
                yield item
            if page.next is None:
                return
            call = calls.next_page(call, page.next)

    async def send_mail(
        self, *, idempotency_key: str | None = None, **mail: Unpack[Mail]
    ) -> Accepted:
        """Send a mail now, or at ``send_at``."""
        return await self._run(calls.send_mail(mail, idempotency_key))

    async def send_batch(
        self,
        recipients: Sequence[Recipient],
        *,
        idempotency_key: str | None = None,
        **content: Unpack[BatchContent],
    ) -> BatchAccepted:
        """Send a mail of its own to each of up to 10,000 recipients."""
        return await self._run(calls.send_batch(content, list(recipients), idempotency_key))

    async def get_batch(self, batch_id: str) -> BatchProgress:
        """A batch's progress: its status and its rows counted by status."""
        return await self._run(calls.batch(batch_id))

    def batch_rows(self, batch_id: str, *, status: Status | None = None) -> AsyncIterator[BatchRow]:
        """Every row of a batch (of one status, if given), in order, page after page."""
        return self._pages(calls.batch_rows(batch_id, status))

    async def cancel_batch(self, batch_id: str) -> BatchProgress:
        """Cancel what of a batch has not gone out (Conflict once it is done)."""
        return await self._run(calls.cancel_batch(batch_id))

    async def get_notification(self, notification_id: str) -> Notification:
        """The status record of a notification."""
        return await self._run(calls.notification(notification_id))

    async def cancel_notification(self, notification_id: str) -> Notification:
        """Cancel a scheduled notification (Conflict once it is past that)."""
        return await self._run(calls.cancel_notification(notification_id))

    async def send_sms(
        self, to: str, *, idempotency_key: str | None = None, **sms: Unpack[Sms]
    ) -> Accepted:
        """Text ``to`` (E.164) now, or at ``send_at``: ``text``, or a named ``template`` with
        ``data``."""
        return await self._run(calls.send_sms(to, sms, idempotency_key))

    async def send_sms_batch(
        self,
        template: str,
        recipients: Sequence[SmsRecipient],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SmsBatchOptions],
    ) -> BatchAccepted:
        """Text a named SMS of its own to each of up to 10,000 recipients."""
        return await self._run(
            calls.send_sms_batch(template, list(recipients), options, idempotency_key)
        )

    async def send_sms_captcha(
        self,
        phone: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[CaptchaOptions],
    ) -> CaptchaAccepted:
        """Text a code to ``phone`` (E.164) for ``purpose``."""
        return await self._run(
            calls.send_captcha("phone", phone, purpose, options, idempotency_key)
        )

    async def verify_sms_captcha(self, phone: str, purpose: str, code: str) -> Verdict:
        """Whether ``code`` is the one texted to ``phone`` (a code is good once)."""
        return await self._run(calls.verify_captcha("phone", phone, purpose, code))

    async def send_mail_captcha(
        self,
        to: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[CaptchaOptions],
    ) -> CaptchaAccepted:
        """Mail a code to ``to`` for ``purpose``."""
        return await self._run(calls.send_captcha("to", to, purpose, options, idempotency_key))

    async def verify_mail_captcha(self, to: str, purpose: str, code: str) -> Verdict:
        """Whether ``code`` is the one mailed to ``to`` (a code is good once)."""
        return await self._run(calls.verify_captcha("to", to, purpose, code))

    async def qiniu_token(self, bucket: str, **options: Unpack[QiniuUpload]) -> QiniuToken:
        """A Qiniu upload token for one of your buckets."""
        return await self._run(calls.qiniu_token(bucket, options))

    async def s3_form(self, bucket: str, **options: Unpack[S3Upload]) -> S3Form:
        """An S3 browser upload form (a presigned POST) for one of your buckets."""
        return await self._run(calls.s3_form(bucket, options))

    async def upload_form(self, store: str, bucket: str, **options: Unpack[S3Upload]) -> S3Form:
        """A browser upload form for one of your buckets in ``store`` (``s3``, ``oss``, ``cos``,
        ``gcs``, or any store the service registers)."""
        return await self._run(calls.upload_form(store, bucket, options))

    def suppressions(self) -> AsyncIterator[Suppression]:
        """Every entry of your suppression list, page after page."""
        return self._pages(calls.suppressions())

    async def get_suppression(self, address: str) -> Suppression | None:
        """The suppression list's entry for ``address``; None when it is not on it."""
        return await self._run(calls.suppression(address))

    async def suppress(self, address: str) -> Suppression:
        """Stop all mail to ``address``; its entry as it is now."""
        return await self._run(calls.suppress(address))

    async def unsuppress(self, address: str) -> Suppression:
        """Mail ``address`` again; the entry removed (NotFound when it was not on the list)."""
        return await self._run(calls.unsuppress(address))
