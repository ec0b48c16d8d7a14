"""Provider names mapped to factories; third parties add theirs through entry points.

A factory takes the :class:`config.Settings` and returns a provider. An adapter outside this
package registers under the entry-point group ``notifier.mail_providers`` or
``notifier.sms_providers``::

    [project.entry-points."notifier.sms_providers"]
    aliyun = "notifier_aliyun:factory"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import TypeVar

from config import ConfigError, Settings, dkim_entries
from notifier.providers.aliyun import AliyunSettings, AliyunSmsProvider
from notifier.providers.base import MailProvider, SmsProvider
from notifier.providers.console import ConsoleMailProvider, ConsoleSmsProvider
from notifier.providers.dkim import DkimSigner, load_keys
from notifier.providers.memory import MemoryMailProvider, MemorySmsProvider
from notifier.providers.outbox import OutboxMailProvider
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings
from notifier.providers.tencent import TencentSettings, TencentSmsProvider
from notifier.providers.twilio import TwilioSettings, TwilioSmsProvider

P = TypeVar("P")
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


def _aliyun(settings: Settings) -> SmsProvider:
    # The settings' validator has checked these are set when aliyun is listed.
    return AliyunSmsProvider(
        AliyunSettings(
            access_key_id=settings.aliyun_access_key_id or "",
            access_key_secret=_secret(settings.aliyun_access_key_secret) or "",
            sign_name=settings.aliyun_sign_name or "",
            template_code=settings.aliyun_template_code or "",
            endpoint=settings.aliyun_endpoint,
            timeout=settings.sms_timeout,
            max_connections=settings.worker_concurrency,
        )
    )


def _tencent(settings: Settings) -> SmsProvider:
    return TencentSmsProvider(
        TencentSettings(
            secret_id=settings.tencent_secret_id or "",
            secret_key=_secret(settings.tencent_secret_key) or "",
            sdk_app_id=settings.tencent_sdk_app_id or "",
            sign_name=settings.tencent_sign_name or "",
            template_id=settings.tencent_template_id or "",
            region=settings.tencent_region,
            endpoint=settings.tencent_endpoint,
            timeout=settings.sms_timeout,
            max_connections=settings.worker_concurrency,
        )
    )


MAIL_PROVIDERS: dict[str, MailFactory] = {
    "smtp": _smtp,
    "outbox": lambda settings: OutboxMailProvider(settings.outbox_dir, dkim=dkim_signer(settings)),
    "console": lambda settings: ConsoleMailProvider(),
    "memory": lambda settings: MemoryMailProvider(),
}

SMS_PROVIDERS: dict[str, SmsFactory] = {
    "twilio": _twilio,
    "aliyun": _aliyun,
    "tencent": _tencent,
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
