"""Reading the settings in a process entry point: every bad value is one line naming it."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic import ValidationError
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource, SettingsError

from notifier.settings.model import ENV_PREFIX, Environment, Settings
from notifier.settings.names import unknown


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line that names the variable."""


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    # The whole setting a string where JSON was wanted (a value inside the JSON is named by
    # its place instead: "at 86").
    whole = len(first["loc"]) == 1
    if (
        first["type"] in ("list_type", "dict_type")
        and isinstance(first.get("input"), str)
        and whole
    ):
        message = "must be JSON: " + message
    if first["loc"]:
        field = str(first["loc"][0])
        variable = f"{ENV_PREFIX}{field.upper()}"
        detail = ".".join(str(part) for part in first["loc"][1:])
        where = f" (at {detail})" if detail else ""
        return f"{variable}: {message}{where}; got {_shown(first.get('input'), field)}"
    return message


# The password in a URL such as redis://:password@host or amqp://user:password@host: up to the
# last @ (a password may hold / or ?; masking too much is the safe side).
_URL_PASSWORD = re.compile(r"(?P<start>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s\"]*:)[^\s\"]*@")
# Settings whose values hold secrets however they are spelled: the API keys' callback secrets
# (and any misspelt field beside them), the console's password hashes.
_SECRET_HOLDERS = ("password", "secret", "token", "dkim", "dsn", "api_keys", "console_users")


def _shown(value: Any, field: str) -> str:
    if any(word in field for word in _SECRET_HOLDERS):
        return "(hidden)"
    text = _URL_PASSWORD.sub(r"\g<start>***@", json.dumps(value, default=str))
    return text if len(text) <= 80 else text[:77] + "..."


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment, raising :class:`ConfigError` with one line.

    A ``NOTIFIER_*`` variable no setting reads (in the environment or ``.env``) is named with the
    known name nearest to it: a :class:`ConfigError` in production, before anything else, since
    a typo there would run production on a default; elsewhere a warning line on stderr.
    """
    # Both as the settings see them: names in any case, .env under the environment.
    given = {**DotEnvSettingsSource(Settings).env_vars, **EnvSettingsSource(Settings).env_vars}
    lines = unknown(given)
    env = overrides.get("env", given.get(f"{ENV_PREFIX}env".lower()))
    if lines and env == Environment.PRODUCTION:
        raise ConfigError("; ".join(lines))
    for line in lines:
        print(f"notifier: configuration warning: {line}", file=sys.stderr, flush=True)
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise ConfigError(_one_line(e)) from None
    except SettingsError as e:
        # pydantic-settings says 'error parsing value for field "api_keys" from source ...'.
        field = str(e).split('"')[1] if '"' in str(e) else "?"
        raise ConfigError(f"{ENV_PREFIX}{field.upper()}: not valid JSON") from None
