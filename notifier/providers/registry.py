"""Provider names mapped to factories; third parties add theirs through entry points.

A factory takes the :class:`notifier.settings.Settings` and returns a provider. A vendor with
settings of its own is a :class:`notifier.settings.Vendor`: its settings model (read from
``NOTIFIER_<VENDOR>_<FIELD>``, see :mod:`notifier.settings.vendor`) and how its provider is made
from it. An adapter outside this package registers either under the entry-point group
``notifier.mail_providers`` or ``notifier.sms_providers``::

    [project.entry-points."notifier.sms_providers"]
    acme = "notifier_acme:vendor"   # Vendor(AcmeSettings, lambda own, settings: AcmeSms(own))
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from notifier.providers.aliyun import AliyunSettings, AliyunSmsProvider
from notifier.providers.base import MailProvider, SmsProvider, UploadStore
from notifier.providers.console import ConsoleMailProvider, ConsoleSmsProvider
from notifier.providers.cos import CosSettings, CosUploads
from notifier.providers.dkim import DkimSigner, load_keys
from notifier.providers.gcs import GcsSettings, GcsUploads
from notifier.providers.memory import MemoryMailProvider, MemorySmsProvider
from notifier.providers.oss import OssSettings, OssUploads
from notifier.providers.outbox import OutboxMailProvider, OutboxSettings
from notifier.providers.qiniu import QiniuSettings, QiniuUploads
from notifier.providers.s3 import S3Settings, S3Uploads
from notifier.providers.sendgrid import SendGridMailProvider, SendGridSettings
from notifier.providers.ses import SesMailProvider, SesSettings
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings
from notifier.providers.tencent import TencentSettings, TencentSmsProvider
from notifier.providers.twilio import TwilioSettings, TwilioSmsProvider
from notifier.settings import (
    ConfigError,
    Environment,
    Settings,
    Vendor,
    VendorSettings,
    dkim_entries,
)

P = TypeVar("P")
MailFactory = Callable[[Settings], MailProvider]
SmsFactory = Callable[[Settings], SmsProvider]
GROUPS = {"notifier.mail_providers": "NOTIFIER_MAIL_PROVIDERS",
          "notifier.sms_providers": "NOTIFIER_SMS_PROVIDERS"}  # fmt: skip


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer of ``NOTIFIER_DKIM_KEYS`` (checked when the settings were read), or None."""
    if not settings.dkim_keys:
        return None
    return DkimSigner(load_keys(dkim_entries(settings.dkim_keys)))


def receipt_url(settings: Settings, provider: str) -> str | None:
    """Where ``provider`` is to post delivery receipts: under NOTIFIER_PUBLIC_URL, if set."""
    if settings.public_url is None:
        return None
    return f"{settings.public_url.rstrip('/')}/v1/receipts/{provider}"


def _twilio(own: TwilioSettings, settings: Settings) -> TwilioSmsProvider:
    return TwilioSmsProvider(
        own,
        max_connections=settings.worker_concurrency,
        status_callback=receipt_url(settings, "twilio"),
    )


MAIL_PROVIDERS: dict[str, MailFactory] = {
    "smtp": Vendor(SmtpSettings, lambda own, s: SmtpMailProvider(
        own, threads=s.worker_concurrency, dkim=dkim_signer(s))),
    "ses": Vendor(SesSettings, lambda own, s: SesMailProvider(
        own, max_connections=s.worker_concurrency, dkim=dkim_signer(s))),
    "sendgrid": Vendor(SendGridSettings, lambda own, s: SendGridMailProvider(
        own, max_connections=s.worker_concurrency)),
    "outbox": Vendor(OutboxSettings, lambda own, s: OutboxMailProvider(own, dkim=dkim_signer(s))),
    "console": lambda settings: ConsoleMailProvider(),
    "memory": lambda settings: MemoryMailProvider(),
}  # fmt: skip

SMS_PROVIDERS: dict[str, SmsFactory] = {
    "twilio": Vendor(TwilioSettings, _twilio),
    "aliyun": Vendor(AliyunSettings, lambda own, s: AliyunSmsProvider(
        own, timeout=s.sms_timeout, max_connections=s.worker_concurrency)),
    "tencent": Vendor(TencentSettings, lambda own, s: TencentSmsProvider(
        own, timeout=s.sms_timeout, max_connections=s.worker_concurrency)),
    "console": lambda settings: ConsoleSmsProvider(),
    "memory": lambda settings: MemorySmsProvider(),
}  # fmt: skip

# The stores a browser can upload to, by the name in their route.
UPLOAD_STORES: dict[str, Callable[[Settings], UploadStore]] = {
    "qiniu": Vendor(QiniuSettings, lambda own, s: QiniuUploads(own)),
    "s3": Vendor(S3Settings, lambda own, s: S3Uploads(own)),
    "oss": Vendor(OssSettings, lambda own, s: OssUploads(own)),
    "cos": Vendor(CosSettings, lambda own, s: CosUploads(own)),
    "gcs": Vendor(GcsSettings, lambda own, s: GcsUploads(own)),
}


def vendor_settings() -> tuple[type[VendorSettings], ...]:
    """Every vendor's settings model: the built-in providers' and stores', then those of the
    adapters registered under the entry-point groups."""
    built_in = [*MAIL_PROVIDERS.values(), *SMS_PROVIDERS.values(), *UPLOAD_STORES.values()]
    # An adapter may take a built-in vendor's model: one model, read once.
    return tuple(dict.fromkeys(_models(built_in) + _registered_models(tuple(sys.path))))


@cache
def _registered_models(path: tuple[str, ...]) -> tuple[type[VendorSettings], ...]:
    # Found once for a sys.path: every process reads the settings, tests many times. One scan
    # of the installed distributions for every group (a scan is about 5 ms of CPU).
    found = entry_points()
    return _models(_load(entry) for group in GROUPS for entry in found.select(group=group))


def _load(entry: EntryPoint) -> Any:
    """What an entry point names; one that cannot be loaded stops start-up with one line."""
    try:
        return entry.load()
    except Exception as e:  # an adapter's import may fail in any way
        raise ConfigError(
            f"{entry.group}: {entry.name} = {entry.value} cannot be loaded"
            f" ({type(e).__name__}: {e})"
        ) from None


def _models(factories: Iterable[object]) -> tuple[type[VendorSettings], ...]:
    found = [f.settings for f in factories if isinstance(f, Vendor)]
    return tuple(dict.fromkeys(found))


# Providers for the tests alone: they keep what they are given in the worker's memory, where no
# one reads it, and record it sent. Not a provider production may name (the contract's lists do
# not have them): it stops start-up there, as an unknown name does.
TESTS_ONLY = frozenset({"memory"})


def _find(name: str, built_in: dict[str, P], group: str, variable: str, settings: Settings) -> P:
    if settings.env is Environment.PRODUCTION and name in TESTS_ONLY:
        raise ConfigError(
            f"{variable}: {name!r} is for tests (it keeps messages in the worker's memory and"
            " records them sent), not production"
        )
    if name in built_in:
        return built_in[name]
    for entry in entry_points(group=group, name=name):
        factory: P = _load(entry)
        return factory
    known = ", ".join(sorted(built_in))
    raise ConfigError(f"{variable or GROUPS[group]}: unknown provider {name!r} (known: {known})")


def mail_factories(settings: Settings) -> dict[str, MailFactory]:
    """The mail providers the settings name, by name, in failover order; a ConfigError naming
    the variable for an unknown one."""
    variable = settings.mail_providers_variable
    return {
        name: _find(name, MAIL_PROVIDERS, "notifier.mail_providers", variable, settings)
        for name in settings.mail_providers
    }


def sms_factories(settings: Settings) -> dict[str, SmsFactory]:
    """Every SMS provider a route names (``NOTIFIER_SMS_PROVIDERS`` and each country's), by
    name; a ConfigError naming the variable that names an unknown one."""
    named = dict.fromkeys(settings.sms_providers, "NOTIFIER_SMS_PROVIDERS")
    for names in settings.sms_country_providers.values():
        for name in names:
            named.setdefault(name, "NOTIFIER_SMS_COUNTRY_PROVIDERS")
    return {
        name: _find(name, SMS_PROVIDERS, "notifier.sms_providers", variable, settings)
        for name, variable in named.items()
    }
