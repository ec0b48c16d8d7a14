"""Provider names mapped to factories; third parties add theirs through entry points.

A factory takes the :class:`config.Settings` and returns a provider. An adapter outside this
package registers under the entry-point group ``notifier.mail_providers``::

    [project.entry-points."notifier.mail_providers"]
    sendgrid = "notifier_sendgrid:factory"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from config import ConfigError, Settings
from notifier.providers.base import MailProvider
from notifier.providers.console import ConsoleMailProvider
from notifier.providers.memory import MemoryMailProvider
from notifier.providers.outbox import OutboxMailProvider
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings

MailFactory = Callable[[Settings], MailProvider]


def _smtp(settings: Settings) -> MailProvider:
    password = settings.mail_password.get_secret_value() if settings.mail_password else None
    return SmtpMailProvider(
        SmtpSettings(
            server=settings.mail_server,
            port=settings.mail_port,
            username=settings.mail_username,
            password=password,
            use_tls=settings.mail_use_tls,
            use_ssl=settings.mail_use_ssl,
            timeout=settings.mail_timeout,
        )
    )


MAIL_PROVIDERS: dict[str, MailFactory] = {
    "smtp": _smtp,
    "outbox": lambda settings: OutboxMailProvider(settings.outbox_dir),
    "console": lambda settings: ConsoleMailProvider(),
    "memory": lambda settings: MemoryMailProvider(),
}


def mail_factory(name: str) -> MailFactory:
    """Find the mail provider called ``name``, built in or registered; else a ConfigError."""
    if name in MAIL_PROVIDERS:
        return MAIL_PROVIDERS[name]
    for entry in entry_points(group="notifier.mail_providers", name=name):
        factory: MailFactory = entry.load()
        return factory
    known = ", ".join(sorted(MAIL_PROVIDERS))
    raise ConfigError(f"NOTIFIER_MAIL_PROVIDER: unknown provider {name!r} (known: {known})")
