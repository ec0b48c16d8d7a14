"""The names of the variables the settings read, and the ``NOTIFIER_*`` ones they do not.

A ``NOTIFIER_*`` variable no setting reads is a typo (``NOTIFIER_CAPTCHA_TTL_S``), a setting of
another release, or the setting of an adapter that is not installed: either way its value is not
used, so :func:`notifier.settings.load_settings` names it (production stops on it). Other tools
that name variables after a host or a service may use the prefix too: those are known here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from notifier.settings.model import ENV_PREFIX, Settings
from notifier.settings.vendor import vendor_settings

_ADDRESS = r"\[?[0-9A-Fa-f.:]+\]?"
# Kubernetes gives each container, for every Service of its namespace, variables named after the
# Service (upper-cased, "-" as "_"): a Service "notifier" or "notifier-redis" makes
# NOTIFIER_SERVICE_HOST, NOTIFIER_REDIS_PORT_6379_TCP_ADDR and the like (Docker's links, too).
# Known by their name and the form of their value, so that a typo does not pass for one.
_SERVICE_LINKS = [
    (r"SERVICE_HOST|PORT_\d+_(TCP|UDP|SCTP)_ADDR", _ADDRESS),
    (r"SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)_PORT", r"\d+"),
    (r"PORT(_\d+_(TCP|UDP|SCTP))?", rf"(tcp|udp|sctp)://{_ADDRESS}:\d+"),
    (r"PORT_\d+_(TCP|UDP|SCTP)_PROTO", r"tcp|udp|sctp"),
]


# What other tools call some settings (an SMTP library's SMTP_HOST is Flask-Mail's MAIL_SERVER):
# the nearest name by spelling would point elsewhere (SMTP_HOST looks most like SNS_CERT_HOSTS).
OTHER_NAMES = {
    "SMTP_HOST": "MAIL_SERVER", "SMTP_SERVER": "MAIL_SERVER", "MAIL_HOST": "MAIL_SERVER",
    "SMTP_PORT": "MAIL_PORT", "SMTP_USER": "MAIL_USERNAME", "SMTP_USERNAME": "MAIL_USERNAME",
    "SMTP_PASSWORD": "MAIL_PASSWORD", "SMTP_TLS": "MAIL_USE_TLS", "SMTP_SSL": "MAIL_USE_SSL",
    "MAIL_FROM": "MAIL_DEFAULT_SENDER", "FROM_EMAIL": "MAIL_DEFAULT_SENDER",
    "REDIS": "REDIS_URL", "REDIS_HOST": "REDIS_URL", "CELERY_BROKER_URL": "BROKER_URL",
    "TWILIO_PHONE_NUMBER": "TWILIO_FROM", "TWILIO_NUMBER": "TWILIO_FROM",
}  # fmt: skip


def variables() -> frozenset[str]:
    """Every ``NOTIFIER_*`` variable the settings read: their own and each vendor's."""
    keys = [*Settings.model_fields, *(key for m in vendor_settings() for key in m.flat_keys())]
    return frozenset(f"{ENV_PREFIX}{key.upper()}" for key in keys)


def unknown(given: Mapping[str, str | None]) -> list[str]:
    """A line for each ``NOTIFIER_*`` variable of ``given`` (name: value) that no setting reads,
    with the known name nearest to it, if one is near."""
    known = {name.removeprefix(ENV_PREFIX): name for name in variables()}
    lines = []
    for name, value in sorted((name.upper(), value or "") for name, value in given.items()):
        rest = name.removeprefix(ENV_PREFIX)
        if rest == name or rest in known or _service_link(name, value):
            continue
        other = OTHER_NAMES.get(rest)
        nearest = [other] if other in known else difflib.get_close_matches(rest, known, n=1)
        lines.append(
            f"{name}: unknown setting"
            + (f" (did you mean {known[nearest[0]]}?)" if nearest else "")
        )
    return lines


def _service_link(name: str, value: str) -> bool:
    return any(
        re.fullmatch(rf"NOTIFIER(_[A-Z0-9_]+?)?_({form})", name) and re.fullmatch(shape, value)
        for form, shape in _SERVICE_LINKS
    )
