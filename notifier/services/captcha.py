"""SMS captchas: accept a send (limits, record, queue), deliver it (code, text, failover), verify."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import phonenumbers

from notifier.errors import (
    FieldError,
    PermanentProviderError,
    TooManyRequests,
    TransientProviderError,
    Unprocessable,
)
from notifier.providers.base import CaptchaSender, SmsProvider
from notifier.providers.signed_http import RecipientThrottled
from notifier.providers.simulated import phone_outcome
from notifier.queueing import Enqueuer
from notifier.schemas import CaptchaRequest, Notification, VerifyRequest
from notifier.services.delivery import (
    Attempt,
    Outcome,
    attempt_delivery,
    failed_attempt,
    failed_for_good,
    sent,
    simulated,
    store_and_queue,
)
from notifier.stores.captchas import CaptchaStore, Sender, Verdict
from notifier.stores.notifications import NotificationStore
from notifier.templating import SmsTemplates

log = logging.getLogger(__name__)
KIND = "sms_captcha"
EXPIRED = "the code expired before it could be sent"


@dataclass(frozen=True)
class CaptchaPolicy:
    """The captcha settings, in one place."""

    length: int = 6
    ttl: int = 300
    resend_interval: int = 60
    max_attempts: int = 5
    daily_limit: int = 10  # sends to one phone a day, for each client
    phone_daily_ceiling: int = 30  # ... and for all clients together
    ip_hourly_limit: int = 30
    product: str = "Notifier"
    # The fraud guard: where a code may be texted (empty: everywhere), what never is.
    allowed_countries: frozenset[str] = frozenset()
    blocked_prefixes: tuple[str, ...] = ()


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


def scope(client: str, purpose: str, phone: str) -> str:
    """What a code is bound to: the calling client, the purpose and the phone."""
    return f"{client}:{purpose}:{phone}"


def accept_captcha(
    request: CaptchaRequest,
    *,
    client: str,
    policy: CaptchaPolicy,
    store: NotificationStore,
    captchas: CaptchaStore,
    queue: Enqueuer,
    test: bool = False,
) -> Notification:
    """Take the send limits, store the notification and queue it; 422 naming ``phone`` when
    the fraud guard refuses the number, 429 when a limit refuses."""
    refused = refusal(request.phone, policy)
    if refused is not None:
        store.count(f"sms_refused:{refused}")
        why = "is in a range" if refused == "blocked_prefix" else "is in a country"
        raise Unprocessable(
            f"captchas are not texted to this number: it {why} this service does not text",
            errors=[FieldError(("body", "phone"), f"refused by the SMS fraud guard ({refused})")],
        )
    member = str(uuid.uuid4())  # this send's entry in the limits
    sender = Sender(scope(client, request.purpose, request.phone), request.phone, request.client_ip)
    limited = captchas.take_send(
        sender,
        member=member,
        resend_interval=policy.resend_interval,
        daily_limit=policy.daily_limit,
        ceiling=policy.phone_daily_ceiling,
        ip_limit=policy.ip_hourly_limit,
    )
    if limited is not None:
        raise TooManyRequests(
            f"captcha {limited.limit.replace('_', ' ')} reached; retry after {limited.retry_after} s",
            headers={"Retry-After": str(limited.retry_after)},
        )
    # The code must not outlive what the answer promised, however late it is sent.
    deadline = time.time() + policy.ttl
    payload = {
        "phone": request.phone,
        "purpose": request.purpose,
        "locale": request.locale,
        "client": client,
        "deadline": deadline,
    }
    try:
        return store_and_queue(
            store, queue, client=client, kind=KIND, payload=payload, expires=deadline,
            reference=request.reference, test=test,
        )  # fmt: skip
    except Exception:
        # Not accepted after all: give the limits back (if Redis lets us).
        with contextlib.suppress(Exception):
            captchas.give_back(sender, member=member)
        raise


def deliver_captcha(
    notification_id: str,
    *,
    store: NotificationStore,
    captchas: CaptchaStore,
    providers: Callable[[str], Sequence[SmsProvider]],
    templates: SmsTemplates,
    policy: CaptchaPolicy,
    max_attempts: int,
    lease: float = 300.0,
) -> Outcome:
    """Make a code, keep its digest, and send it through the first provider that takes it.

    ``providers`` gives the providers for a number, in failover order. A provider that sends
    approved templates (:class:`~notifier.providers.base.CaptchaSender`: Aliyun, Tencent) gets
    the captcha's parts; any other gets the text rendered from our templates.
    """

    def send(claimed: Attempt) -> Outcome:
        attempt, payload = claimed.attempt, claimed.payload
        left = payload["deadline"] - time.time()
        if left < 1:
            store.settle(notification_id, "failed", provider=None, error=EXPIRED)
            return Outcome("failed", attempt)
        where = scope(payload["client"], payload["purpose"], payload["phone"])
        # A new code on each attempt: the code of an attempt that failed was never kept anywhere.
        code = captchas.new_code(where, length=policy.length, ttl=left)
        if payload.get("test"):
            # A test key's integration test reads the code from the status record.
            store.show_test_code(notification_id, code)
            return simulated(
                store, notification_id, attempt, phone_outcome(payload["phone"]),
                max_attempts=max_attempts, deadline=claimed.deadline,
            )  # fmt: skip
        parts = {
            "code": code,
            "minutes": math.ceil(left / 60),
            "product": policy.product,
            "locale": payload["locale"],
            "purpose": payload["purpose"],
        }
        text = templates.render(
            "captcha", parts["locale"], product=policy.product, code=code, minutes=parts["minutes"]
        )
        failures = []
        route = providers(payload["phone"])
        for provider in route:
            try:
                if isinstance(provider, CaptchaSender):
                    ref = provider.send_captcha(to=payload["phone"], **parts)
                else:
                    ref = provider.send_sms(to=payload["phone"], body=text)
            except (PermanentProviderError, RecipientThrottled) as e:
                # A number no provider can reach, or the vendor's per-number limit (its
                # anti-abuse rule: another provider or a retry would only help an abuser).
                return failed_for_good(store, notification_id, attempt, e)
            except TransientProviderError as e:
                log.warning("%s: %s failed, handing over: %s", notification_id, e.provider, e)
                failures.append(f"{e.provider}: {e}")
                continue
            # What a falling verify ratio is read against (see verify_captcha).
            store.count(f"captchas_sent:sms:{payload['purpose']}")
            return sent(store, notification_id, attempt, provider.name, ref)
        return failed_attempt(
            store,
            notification_id,
            attempt,
            max_attempts=max_attempts,
            error="; ".join(failures),
            provider=route[-1].name if route else None,
            deadline=claimed.deadline,
        )

    return attempt_delivery(
        store, notification_id, lease=lease, max_attempts=max_attempts, send=send
    )


def verify_captcha(
    request: VerifyRequest,
    *,
    client: str,
    policy: CaptchaPolicy,
    captchas: CaptchaStore,
    store: NotificationStore | None = None,
    test: bool = False,
) -> Verdict:
    """Check a code the user typed; a good one is counted in ``store``'s /metrics counters,
    beside the codes sent: pumping shows as a verify ratio that falls (Twilio's advice)."""
    where = scope(client, request.purpose, request.phone)
    verdict = captchas.verify(where, request.code, max_attempts=policy.max_attempts)
    if verdict.valid and store is not None and not test:  # as sends are: live traffic only
        store.count(f"captchas_verified:sms:{request.purpose}")
    return verdict
