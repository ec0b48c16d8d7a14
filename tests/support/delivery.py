"""A runtime's delivery bundle with the providers of a test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from notifier.providers.base import MailProvider, SmsProvider
from notifier.runtime import Runtime
from notifier.services.delivery import Delivery


def delivery(
    rt: Runtime,
    *,
    mail: MailProvider | Sequence[MailProvider] | None = None,
    sms: Sequence[SmsProvider] | None = None,
    max_attempts: int = 3,
    **changes: Any,
) -> Delivery:
    """``rt``'s delivery bundle with ``mail`` as its mail provider (or its mail route, in
    failover order), ``sms`` as every number's SMS route, ``max_attempts`` (3, not the
    settings': a test's cap says what it tests), and any other field changed."""
    changes["max_attempts"] = max_attempts
    if mail is not None:
        mails = list(mail) if isinstance(mail, Sequence) else [mail]
        changes["mails"] = lambda: mails
    if sms is not None:
        route = list(sms)
        changes["sms"] = lambda phone: route
    return replace(rt.delivery, **changes)
