"""Provider names mapped to factories; third parties add theirs through entry points.

A factory takes the :class:`config.Settings` and returns a provider. An adapter outside this
package registers under the entry-point group ``notifier.mail_providers`` or
``notifier.sms_providers``::

    [project.entry-points."notifier.sms_providers"]
    aliyun = "notifier_aliyun:factory"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import SecretStr

from notifier.providers.aliyun import AliyunSettings, AliyunSmsProvider
from notifier.providers.base import MailProvider, SmsProvider
from notifier.providers.console import ConsoleMailProvider, ConsoleSmsProvider
from notifier.providers.dkim import DkimSigner, load_keys
from notifier.providers.memory import MemoryMailProvider, MemorySmsProvider
from notifier.providers.outbox import OutboxMailProvider
from notifier.providers.signed_http import TemplateSmsSettings
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings
from notifier.providers.tencent import TencentSettings, TencentSmsProvider
from notifier.providers.twilio import TwilioSettings, TwilioSmsProvider
from notifier.settings import ConfigError, Settings, dkim_entries

P = TypeVar("P")
V = TypeVar("V", bound=TemplateSmsSettings)
_NOT_A_SETTING = object()
# What every SMS provider takes from the shared settings, not a vendor's own.
_SHARED = frozenset({"timeout", "max_connections"})
MailFactory = Callable[[Settings], MailProvider]
SmsFactory = Callable[[Settings], SmsProvider]


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return None if get is None else str(get())


def _smtp(settings: Settings) -> MailProvider:
    return SmtpMailProvider(
        SmtpSettings(
            server=settings.mail_server,
            port=settings.mail_port,
            username=settings.mail_username,
            password=_secret(settings.mail_password),
            use_tls=settings.mail_use_tls,
            use_ssl=settings.mail_use_ssl,
            timeout=settings.mail_timeout,
            # One a thread, up to 32: 32 kept connections carry ~400 mails a second through a
            # relay 20 ms away, more than one process's core sends; relays cap each client's.
            max_connections=settings.mail_max_connections or min(settings.worker_concurrency, 32),
            idle_timeout=settings.mail_idle_timeout,
            dkim=dkim_signer(settings),
        )
    )


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer of ``NOTIFIER_DKIM_KEYS`` (checked when the settings were read), or None."""
    if not settings.dkim_keys:
        return None
    return DkimSigner(load_keys(dkim_entries(settings.dkim_keys)))


def _twilio(settings: Settings) -> SmsProvider:
    # The settings' validator has checked these are set when twilio is listed.
    return TwilioSmsProvider(
        TwilioSettings(
            account_sid=settings.twilio_account_sid or "",
            auth_token=_secret(settings.twilio_auth_token) or "",
            from_=settings.twilio_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_base_url,
            timeout=settings.twilio_timeout,
            max_connections=settings.worker_concurrency,
            status_callback=receipt_url(settings, "twilio"),
        )
    )


def receipt_url(settings: Settings, provider: str) -> str | None:
    """Where ``provider`` is to post delivery receipts: under NOTIFIER_PUBLIC_URL, if set."""
    if settings.public_url is None:
        return None
    return f"{settings.public_url.rstrip('/')}/v1/receipts/{provider}"


def _template_sms(settings: Settings, vendor: str, kind: type[V]) -> V:
    """A template-only vendor's settings (Aliyun's, Tencent's), each field from the setting
    ``NOTIFIER_<VENDOR>_<FIELD>`` of its name; the next such vendor needs no code here.

    The settings' validator has checked the required ones are set when the vendor is listed.
    """
    values: dict[str, Any] = {
        field.name: _secret(value) or "" if isinstance(value, SecretStr) else value or ""
        for field in dataclasses.fields(kind)
        if field.name not in _SHARED
        and (value := getattr(settings, f"{vendor}_{field.name}", _NOT_A_SETTING))
        is not _NOT_A_SETTING
    }
    return kind(**values, timeout=settings.sms_timeout, max_connections=settings.worker_concurrency)


MAIL_PROVIDERS: dict[str, MailFactory] = {
    "smtp": _smtp,
    "outbox": lambda settings: OutboxMailProvider(settings.outbox_dir, dkim=dkim_signer(settings)),
    "console": lambda settings: ConsoleMailProvider(),
    "memory": lambda settings: MemoryMailProvider(),
}

SMS_PROVIDERS: dict[str, SmsFactory] = {
    "twilio": _twilio,
    "aliyun": lambda s: AliyunSmsProvider(_template_sms(s, "aliyun", AliyunSettings)),
    "tencent": lambda s: TencentSmsProvider(_template_sms(s, "tencent", TencentSettings)),
    "console": lambda settings: ConsoleSmsProvider(),
    "memory": lambda settings: MemorySmsProvider(),
}


def _find(name: str, built_in: dict[str, P], group: str, variable: str) -> P:
    if name in built_in:
        return built_in[name]
    for entry in entry_points(group=group, name=name):
        factory: P = entry.load()
        return factory
    known = ", ".join(sorted(built_in))
    raise ConfigError(f"{variable}: unknown provider {name!r} (known: {known})")


def mail_factory(name: str) -> MailFactory:
    """Find the mail provider called ``name``, built in or registered; else a ConfigError."""
    return _find(name, MAIL_PROVIDERS, "notifier.mail_providers", "NOTIFIER_MAIL_PROVIDER")


def sms_factories(names: Iterable[str]) -> dict[str, SmsFactory]:
    """The SMS providers of ``names`` by name; a ConfigError for an unknown one."""
    return {
        name: _find(name, SMS_PROVIDERS, "notifier.sms_providers", "NOTIFIER_SMS_PROVIDERS")
        for name in names
    }
