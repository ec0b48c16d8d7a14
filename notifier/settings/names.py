"""The names of the variables the settings read."""

from __future__ import annotations

from notifier.settings.model import ENV_PREFIX, Settings
from notifier.settings.vendor import vendor_settings


def variables() -> frozenset[str]:
    """Every ``NOTIFIER_*`` variable the settings read: their own and each vendor's."""
    keys = [*Settings.model_fields, *(key for m in vendor_settings() for key in m.flat_keys())]
    return frozenset(f"{ENV_PREFIX}{key.upper()}" for key in keys)
