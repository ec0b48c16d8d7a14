"""A vendor's settings: one model, read from the contract's flat ``NOTIFIER_<VENDOR>_<FIELD>``.

A vendor (Twilio, Aliyun, an S3 store, an adapter of another package) declares its settings once,
beside its adapter, and the adapter takes that model as it is::

    class TwilioSettings(VendorSettings):
        prefix: ClassVar[str] = "twilio"
        account_sid: str | None = None
        timeout: float = Field(10.0, gt=0)

Each field is read from ``NOTIFIER_<PREFIX>_<FIELD>`` (its ``validation_alias`` in place of its
name where Python forbids the name: ``from``) in the environment or ``.env``, or from the flat
keyword (``Settings(twilio_timeout=5)``), and validated with the rest of the settings: a bad one
stops start-up with one line naming its variable. :meth:`Settings.vendor` hands the model out.
What a vendor needs only when it is used is checked once the rest is read,
by :meth:`VendorSettings.check`.

The settings learn the vendors from :func:`notifier.providers.registry.vendor_settings`: the
built-in providers and upload stores, and every adapter registered under the entry-point groups.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)

if TYPE_CHECKING:
    from notifier.settings.model import Settings

S = TypeVar("S", bound="VendorSettings")
P = TypeVar("P")


class VendorSettings(BaseModel):
    """The base of every vendor's settings model; see the module's docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # The vendor's part of its variables' names, and the name it is listed by
    # (NOTIFIER_SMS_PROVIDERS=twilio): NOTIFIER_TWILIO_ACCOUNT_SID.
    prefix: ClassVar[str]
    # The fields a listed vendor must have set, checked in this order.
    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def flat_keys(cls) -> dict[str, tuple[str, FieldInfo]]:
        """Each field by its key among the settings (``twilio_from``): its input name, its field."""
        inputs = {cls._input(name): field for name, field in cls.model_fields.items()}
        return {f"{cls.prefix}_{name}": (name, field) for name, field in inputs.items()}

    @classmethod
    def variable(cls, field: str) -> str:
        """The variable ``field`` is read from: ``NOTIFIER_TWILIO_ACCOUNT_SID``."""
        return f"NOTIFIER_{cls.prefix}_{cls._input(field)}".upper()

    @classmethod
    def _input(cls, field: str) -> str:
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else field

    def unset(self, *fields: str) -> str | None:
        """The variable of the first of ``fields`` that is unset or empty, or None."""
        return next((self.variable(f) for f in fields if not text(getattr(self, f))), None)

    def paired(self, first: str, second: str, otherwise: str = "") -> None:
        """Refuse ``first`` set without ``second``, or the other way round (a key's id and its
        secret): one line naming both, and what ``otherwise`` happens with neither."""
        if bool(text(getattr(self, first))) != bool(text(getattr(self, second))):
            both = f"{self.variable(first)}: set it and {self.variable(second)} together"
            raise ValueError(both + (f" ({otherwise})" if otherwise else ""))

    def check(self, settings: Settings) -> None:
        """Refuse, with one line naming the variable, what cannot be given the rest of
        ``settings``: here, a field of ``required`` left unset while the vendor is listed."""
        if self.prefix in settings.providers_listed and (missing := self.unset(*self.required)):
            raise ValueError(f"{missing}: required when {self.prefix} is listed")


def https_in_production(
    settings: Settings, variable: str, url: str | None, *, here: bool = True
) -> None:
    """In production a vendor's URL is https, or (with ``here``) http to this machine (a local
    relay or sidecar, a benchmark's stand-in): no key, number or code crosses a network in
    cleartext. A ValueError naming ``variable`` otherwise. Without ``here``, https only: a
    browser posts a form there from an https page, or a test peer speaks TLS anyway."""
    if settings.env.value != "production" or not url or url.startswith("https://"):
        return
    if not here:
        raise ValueError(f"{variable}: must be https:// in production")
    if not this_machine(urlsplit(url).hostname or ""):
        raise ValueError(f"{variable}: must be https:// in production (http only to this machine)")


def this_machine(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` (any case, a final dot) or a loopback
    address (127.0.0.0/8, ::1)."""
    host = host.strip("[]").rstrip(".").lower()
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def text(value: str | SecretStr | None) -> str:
    """A setting's text, a secret's too: ``""`` when unset."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value or ""


@dataclass(frozen=True)
class Vendor(Generic[S, P]):
    """A provider (or upload store) made from its vendor's settings: ``make(own, settings)``
    gets the vendor's model and, for what every provider shares (the thread count, the public
    URL), the settings. Called with the settings, it is the factory the registry takes."""

    settings: type[S]
    make: Callable[[S, Settings], P]

    def __call__(self, settings: Settings) -> P:
        return self.make(settings.vendor(self.settings), settings)


def vendor_settings() -> tuple[type[VendorSettings], ...]:
    """Every vendor's settings model the registry knows, adapters' of other packages included."""
    # Imported here: the registry imports every adapter, and each adapter imports this module.
    from notifier.providers.registry import vendor_settings as registered

    return _one_model_a_variable(registered())


@cache
def _one_model_a_variable(
    models: tuple[type[VendorSettings], ...],
) -> tuple[type[VendorSettings], ...]:
    """``models``, once no variable is declared twice (by two vendors, or a vendor and the rest)."""
    from notifier.settings.loading import ConfigError
    from notifier.settings.model import Settings

    owners = {name: "Settings" for name in Settings.model_fields}
    for model in models:
        for key in model.flat_keys():
            if key in owners:
                variable = f"NOTIFIER_{key.upper()}"
                raise ConfigError(f"{variable}: declared by {owners[key]} and {model.__name__}")
            owners[key] = model.__name__
    return models


class VendorVariables(PydanticBaseSettingsSource):
    """Each vendor's ``NOTIFIER_<PREFIX>_<FIELD>`` from the environment, else ``.env``, under
    its key among the settings (``twilio_from``); ``Settings`` gives them to their models."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        # Both keep the variables they read by lower-cased name (the settings ignore case).
        self._sources = [s for s in (env, dotenv) if isinstance(s, EnvSettingsSource)]
        self._prefix = str(settings_cls.model_config.get("env_prefix", "")).lower()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # not asked: __call__ reads every vendor's at once

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for model in vendor_settings():
            for key, (_, field) in model.flat_keys().items():
                for source in self._sources:
                    value = source.env_vars.get(self._prefix + key)
                    if value is not None:
                        found[key] = _decoded(source, key, field, value)
                        break
        return found


def _decoded(source: EnvSettingsSource, key: str, field: FieldInfo, value: str) -> Any:
    """A list or a mapping is JSON in a variable, as for the other settings."""
    if not source.field_is_complex(field):
        return value
    try:
        return source.decode_complex_value(key, field, value)
    except ValueError as e:
        where = "DotEnvSettingsSource" if isinstance(source, DotEnvSettingsSource) else "env"
        raise SettingsError(f'error parsing value for field "{key}" from source "{where}"') from e


def vendors_read(data: dict[str, Any]) -> tuple[dict[str, Any], dict[type[VendorSettings], Any]]:
    """Take each vendor's keys out of ``data`` into its model; the rest, and the models.

    A bad value is a :class:`ValidationError` that names the setting by its key, as for any
    other setting (``twilio_timeout``), so it reads as ``NOTIFIER_TWILIO_TIMEOUT: …``.
    """
    rest = dict(data)
    read: dict[type[VendorSettings], Any] = {}
    errors: list[InitErrorDetails] = []
    for model in vendor_settings():
        given = {name: rest.pop(key) for key, (name, _) in model.flat_keys().items() if key in rest}
        try:
            read[model] = model.model_validate(given)
        except ValidationError as e:
            errors += [_named(model, error) for error in e.errors()]
    if errors:
        raise ValidationError.from_exception_data("Settings", errors)
    return rest, read


def _named(model: type[VendorSettings], error: Mapping[str, Any]) -> InitErrorDetails:
    loc = tuple(error["loc"])
    named = InitErrorDetails(
        type=error["type"],
        loc=(f"{model.prefix}_{loc[0]}", *loc[1:]) if loc else (),
        input=error["input"],
    )
    if "ctx" in error:
        named["ctx"] = error["ctx"]
    return named
