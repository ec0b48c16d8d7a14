"""What the adapters that sign their own HTTP calls (Aliyun, Tencent) share.

A keep-alive session sized for the worker's threads, one POST under a whole-call deadline
(:mod:`notifier.deadline`) whose network faults are transient, the errors a vendor's answer is sorted into, and the number check. Both vendors'
SMS products send approved templates only, so they share two seams,
:class:`notifier.providers.base.CaptchaSender` and :class:`notifier.providers.base.TemplateSender`.
The mail APIs (SES, SendGrid) sort their answers into the same errors (:func:`refusal`,
:func:`operator_error`).

::

    TransientProviderError
    ├── OperatorError       credentials, signature, template, quota: the operator must fix it;
    │                       transient for the message (another provider may deliver it), and
    │                       logged at ERROR when raised
    └── RecipientThrottled  the vendor's per-number limit (its anti-abuse rule): a code fails for
                            good (another provider would only help an abuser); an SMS
                            notification goes on to the next provider
"""

from __future__ import annotations

import logging
import re
from typing import Generic, TypeVar

import requests

from notifier.deadline import DeadlineAdapter, session
from notifier.errors import (
    NotForThisProvider,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from notifier.redact import redact
from notifier.settings import Settings, VendorSettings, https_in_production
from notifier.settings.values import UrlSafeToken

log = logging.getLogger(__name__)

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Aliyun's SignatureDoesNotMatch quotes its whole string to sign, our parameters included.
_STRING_TO_SIGN = re.compile(r"\s*server string to sign is:.*", re.IGNORECASE | re.DOTALL)
# A number as a vendor may quote it back: without "+" (13800138000, 8613800138000).
_DIGITS = re.compile(r"\d{7,}")
# What a captcha template may ask for; the product is the approved sign name, never a variable.
TEMPLATE_VARIABLES = ("code", "minutes")


class OperatorError(TransientProviderError):
    """The vendor refused our account, signature, template or quota; ``code`` is its code."""

    operator_error = True

    def __init__(self, message: str, *, provider: str, code: str) -> None:
        super().__init__(message, provider=provider)
        self.code = code


class RecipientThrottled(TransientProviderError):
    """The vendor's per-number limit refused the message; ``code`` is its code."""

    operator_error = False

    def __init__(self, message: str, *, provider: str, code: str) -> None:
        super().__init__(message, provider=provider)
        self.code = code


# ``host[:port]`` (https), or a full base URL: ``http://127.0.0.1:8081`` for a test peer.
ENDPOINT = r"^(https?://)?[^\s/]+(:\d+)?/?$"


class TemplateSmsSettings(VendorSettings):
    """What every template-only vendor's settings have: where its calls go, and the token its
    delivery reports' URL carries (neither vendor signs them; unset, their route refuses all)."""

    endpoint: str
    receipt_token: UrlSafeToken | None = None

    def check(self, settings: Settings) -> None:
        super().check(settings)
        if self.prefix in settings.providers_listed:
            https_in_production(settings, self.variable("endpoint"), base_url(self.endpoint))


T = TypeVar("T", bound=TemplateSmsSettings)


class TemplateSmsProvider(Generic[T]):
    """The part of a template-only vendor's adapter that is not the vendor's wire format.

    One keep-alive session shared by the worker's threads and no other state, so a subclass
    that signs each call on its own (fresh nonce or timestamp) is thread-safe.
    """

    name: str

    def __init__(
        self,
        settings: T,
        *,
        timeout: float = 10.0,
        max_connections: int = 32,
        template_params: tuple[str, ...] = ("code",),
    ) -> None:
        """``timeout``: of each call in all (NOTIFIER_SMS_TIMEOUT). ``max_connections``: kept-alive
        connections, one per worker thread, so none is opened per message. ``template_params``:
        the approved template's variables, in order, out of "code" and "minutes"."""
        unknown = sorted(set(template_params) - set(TEMPLATE_VARIABLES))
        if unknown:
            raise ValueError(f"template_params: unknown variables {unknown}")
        self._settings = settings
        self._template_params = template_params
        self._url = base_url(settings.endpoint) + "/"
        # Each call ``timeout`` seconds in all, however slowly the vendor answers. No automatic
        # retries: SendSms is not idempotent, so a retry is the task's decision.
        self._session = session(DeadlineAdapter(total=timeout, max_connections=max_connections))

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        """Refuse: mainland carriers deliver approved templates only (``send_template``)."""
        raise PermanentProviderError(
            f"{self.name} sends templates only (mainland carriers refuse free text): "
            "call send_template or send_captcha",
            provider=self.name,
        )

    def close(self) -> None:
        """Close the kept-alive connections; the provider may be used again afterwards."""
        self._session.close()

    def _post(self, data: bytes, headers: dict[str, str]) -> requests.Response:
        """POST ``data`` to the endpoint; a connection fault or the deadline is transient."""
        try:
            return self._session.post(self._url, data=data, headers=headers)
        except requests.RequestException as e:
            raise TransientProviderError(
                f"{self.name} unreachable: {type(e).__name__}: {e}", provider=self.name
            ) from e


def vendor_message(message: str) -> str:
    """A vendor's error message fit for logs and status records: no phone numbers, short."""
    message = redact(_STRING_TO_SIGN.sub("", message))
    return _DIGITS.sub(lambda m: m[0][:3] + "*" * (len(m[0]) - 5) + m[0][-2:], message)[:300]


def operator_error(provider: str, code: str, message: str) -> OperatorError:
    """Log the refusal at ERROR (metrics and alerts count these) and return the error."""
    message = vendor_message(message)
    log.error(
        "%s refused our configuration: %s: %s",
        provider,
        code,
        message,
        extra={"provider": provider, "provider_code": code, "operator_error": True},
    )
    return OperatorError(f"{provider} {code}: {message}", provider=provider, code=code)


def refusal(
    provider: str,
    code: str,
    message: str,
    *,
    permanent: frozenset[str],
    throttled: frozenset[str],
    transient: bool,
    not_ours: frozenset[str] = frozenset(),
) -> ProviderError:
    """The error for a vendor's refusal ``code``: a code not known to pass is the operator's;
    one in ``not_ours`` refuses what this message's own data makes of the template (a value
    too long for it, a word it bans): no retry changes that, another vendor may take it."""
    error = f"{provider} {code}: {vendor_message(message)}"
    if code in permanent:
        return PermanentProviderError(error, provider=provider)
    if code in not_ours:
        return NotForThisProvider(error, provider=provider)
    if code in throttled:
        return RecipientThrottled(error, provider=provider, code=code)
    if transient:
        return TransientProviderError(error, provider=provider)
    return operator_error(provider, code, message)


def template_values(names: tuple[str, ...], *, code: str, minutes: int) -> list[str]:
    """The values of the template's variables ``names``, in order, as strings."""
    values = {"code": code, "minutes": str(minutes)}
    return [values[name] for name in names]


def check_e164(provider: str, to: str) -> str:
    """Return ``to`` when it is an E.164 number; a permanent error otherwise."""
    if not _E164.match(to):
        raise PermanentProviderError("not an E.164 phone number", provider=provider)
    return to


def base_url(endpoint: str) -> str:
    """``host[:port]`` means https; a full ``http(s)://`` base URL is taken as it is."""
    endpoint = endpoint.rstrip("/")
    return endpoint if "://" in endpoint else f"https://{endpoint}"
