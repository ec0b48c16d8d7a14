"""Typed settings of Notifier, read from ``NOTIFIER_*`` environment variables and ``.env``.

Build one with :func:`load_settings` in a process entry point: it turns every bad or missing
value into a :class:`ConfigError` whose message is one line naming the variable. Tests build
``Settings(...)`` directly and pass it to ``create_app``.

``model`` holds the settings and what an unset one means in each environment, ``vendor`` how
each vendor's own settings model is read and checked (the models live beside their adapters),
``clients`` the API's callers (``NOTIFIER_API_KEYS``), ``values`` kinds of value several
settings take, ``names`` the variables read and the unknown ones, ``loading`` the one-line
errors. The root ``config`` module, the contract's name for them, re-exports this package.
"""

from notifier.settings.clients import RATE_PATTERN, ApiClient, Scope
from notifier.settings.loading import ConfigError, load_settings
from notifier.settings.model import (
    AMQP_SCHEMES,
    ENV_PREFIX,
    ConsoleUser,
    DkimEntry,
    Environment,
    Settings,
    dkim_entries,
    usable_cores,
)
from notifier.settings.names import variables
from notifier.settings.values import StoreEndpoint, UrlSafeToken
from notifier.settings.vendor import (
    Vendor,
    VendorSettings,
    https_in_production,
    text,
    this_machine,
)

__all__ = [
    "AMQP_SCHEMES",
    "ENV_PREFIX",
    "RATE_PATTERN",
    "ApiClient",
    "ConfigError",
    "ConsoleUser",
    "DkimEntry",
    "Environment",
    "Scope",
    "Settings",
    "StoreEndpoint",
    "UrlSafeToken",
    "Vendor",
    "VendorSettings",
    "dkim_entries",
    "https_in_production",
    "load_settings",
    "text",
    "this_machine",
    "usable_cores",
    "variables",
]
