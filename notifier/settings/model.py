"""The settings model: every ``NOTIFIER_*`` variable but the vendors' (their own models, see
:mod:`notifier.settings.vendor`), its default, its check, what an unset one means per
environment."""

from __future__ import annotations

import math
import os
import re
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    DirectoryPath,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from notifier.settings.clients import RATE_PATTERN, ApiClient
from notifier.settings.values import UrlSafeToken
from notifier.settings.vendor import VendorSettings, VendorVariables, vendors_read

ENV_PREFIX = "NOTIFIER_"
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
# The mail providers that send to the world, from NOTIFIER_MAIL_DEFAULT_SENDER's address.
SENDING_PROVIDERS = ("smtp", "ses", "sendgrid")
V = TypeVar("V", bound=VendorSettings)


# The least NOTIFIER_STATUS_TTL: a day, for a backlog's wait (and more with long retries).
MIN_STATUS_TTL = 24 * 3600


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    PRODUCTION = "production"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS)
        return os.cpu_count() or 1


class DkimEntry(BaseModel):
    """One sending domain's DKIM key in ``NOTIFIER_DKIM_KEYS``: its selector and its private key,
    PEM, in a file or in the setting itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    selector: str = Field(
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})*$"
    )
    private_key_file: Path | None = None
    private_key: SecretStr | None = None

    @model_validator(mode="after")
    def _one_key(self) -> DkimEntry:
        if (self.private_key_file is None) == (self.private_key is None):
            raise ValueError("give private_key_file or private_key, one of them")
        return self


class ConsoleUser(BaseModel):
    """One operator of the console in ``NOTIFIER_CONSOLE_USERS``: a name and the hash of a
    password (``notifier console add-user`` makes the entry; the password is never kept)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    # werkzeug's hash, method$salt$hash: its scrypt (what `notifier console add-user` makes) or
    # pbkdf2, at no less than their costs today.
    password_hash: SecretStr

    @field_validator("password_hash")
    @classmethod
    def _slow_hash(cls, value: SecretStr) -> SecretStr:
        found = re.fullmatch(r"([a-z0-9:]+)\$[^$]+\$[0-9a-f]+", value.get_secret_value())
        if found is None or not slow_enough(found[1]):
            raise ValueError(
                "not a hash of `notifier console add-user` (werkzeug's scrypt, N at least 2**15,"
                " r at least 8; or its pbkdf2 of sha256 or sha512, 600,000 rounds or more)"
            )
        return value


def slow_enough(method: str) -> bool:
    """Whether werkzeug's hash ``method`` (``scrypt:32768:8:1``, ``pbkdf2:sha256:1000000``) costs
    at least what a guess should: scrypt's N 2**15 and r 8 (werkzeug's default), or pbkdf2's
    600,000 rounds of HMAC-SHA-256 (OWASP's), where ``pbkdf2:sha256:1`` is a free guess."""
    name, *cost = method.split(":")
    if name == "scrypt" and len(cost) in (0, 3) and all(c.isdigit() for c in cost):
        n, r, p = (int(c) for c in cost) if cost else (2**15, 8, 1)
        return n >= 2**15 and r >= 8 and p >= 1
    if name == "pbkdf2" and len(cost) <= 2 and cost[:1] in ([], ["sha256"], ["sha512"]):
        return len(cost) < 2 or (cost[1].isdigit() and int(cost[1]) >= 600_000)
    return False


# ISO 3166-1 alpha-2 codes of places with no telephone numbering plan of their own, which the
# phone-number library has no region for (Antarctica, Bouvet Island, South Georgia, Heard Island,
# Pitcairn, the French Southern Territories, the US Minor Outlying Islands): a list of ISO codes
# may name them, and they match no number.
ISO_WITHOUT_NUMBERS = frozenset({"AQ", "BV", "GS", "HM", "PN", "TF", "UM"})


class Settings(BaseSettings):
    """Every setting of the contract; see README "Settings" for what each one means."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )
    # Each vendor's settings model as read, by its class (see vendor()).
    _vendors: dict[type[VendorSettings], VendorSettings] = PrivateAttr(default_factory=dict)

    env: Environment = Environment.DEVELOPMENT
    # Where development and testing keep the embedded Redis, the API key and the captcha secret;
    # production never writes there.
    state_dir: Path = Path(".notifier")

    # redis:// or rediss:// for one server; redis+sentinel://host:port[,host:port…]/<master>[/<db>]
    # for the primary that sentinels name (see notifier/redisconn.py).
    redis_url: str | None = None
    broker_url: str | None = None
    # Replicas that must hold an accepting write before it is answered (Redis WAIT); unset: 1
    # with sentinels, 0 with one server. See README "Surviving the loss of the Redis primary".
    redis_min_replicas: int | None = Field(None, ge=0, le=16)
    redis_replica_timeout_ms: int = Field(500, ge=1, le=10_000)
    broker_visibility_timeout: int = Field(3600, ge=5)
    # RabbitMQ only: "quorum" declares every lane as a replicated quorum queue (README "RabbitMQ").
    broker_queue_type: Literal["classic", "quorum"] = "classic"
    # RabbitMQ only: seconds between AMQP heartbeats on a worker's connection; a node that goes
    # silent is noticed after about twice this (RabbitMQ advises 5 to 20 s; Celery's is 120).
    broker_heartbeat: int = Field(10, ge=2, le=600)
    # A status record (never the message itself) is kept this long after its last change.
    status_ttl: int = Field(7 * 24 * 3600, ge=60)  # and see MIN_STATUS_TTL
    max_body_size: int = Field(1024 * 1024, ge=1024)
    # The batch routes (mail and SMS): 10,000 rows with their data take more than a mail does.
    batch_max_body_size: int = Field(8 * 1024 * 1024, ge=1024)
    # Rows a client may have in batches not done yet; a batch that would pass it is 429.
    batch_max_pending: int = Field(100_000, ge=1)

    api_keys: list[ApiClient] | None = None
    # The operator console (/console, docs/console.md): its accounts. Unset: the console is off
    # (development makes one account of its own, printed by `notifier run`).
    console_users: list[ConsoleUser] | None = None
    # Proxies in front of the web that each append the address they saw to X-Forwarded-For: the
    # console's login limit per address counts the address this many hops back (0: the peer).
    console_trusted_proxies: int = Field(0, ge=0, le=5)

    # The mail providers in failover order: a comma list (NOTIFIER_MAIL_PROVIDERS), or one name
    # (NOTIFIER_MAIL_PROVIDER, as before the list); never both. Unset: outbox outside production,
    # smtp in it (see _environment_defaults). Each provider's own settings are its vendor's model
    # (notifier/providers/smtp.py: NOTIFIER_MAIL_SERVER, …).
    mail_provider: str | None = None
    mail_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mail_default_sender: str | None = None

    # Sends one worker process keeps in flight (threads of its pool): far more than cores,
    # since a send mostly waits for a provider 20-300 ms away. 64: a 200 ms provider lets one
    # process send 320 a second, more than its core can (see README "Sizing").
    worker_concurrency: int = Field(64, ge=1, le=1000)
    # Worker processes `notifier run` starts from the Procfile's `worker` line: one per core this
    # process may run on, since one process's Python runs on one core. See README "Sizing".
    worker_processes: int = Field(default_factory=usable_cores, ge=1, le=256)
    # Status callbacks one worker process runs at once (unset: a quarter of its threads), and
    # of those at most this many to one receiver (a client's callback_url): receivers are other
    # people's servers, and the other threads stay free for codes and mail whatever they do.
    # See docs/production.md, "Capacity each lane keeps".
    callback_concurrency: int | None = Field(None, ge=1, le=1000)
    callback_receiver_concurrency: int = Field(4, ge=1, le=1000)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One JSON object a line; development defaults to plain text.
    log_format: Literal["json", "text"]

    # Unhandled errors of the web and the workers go to this Sentry DSN, masked (README "Errors").
    sentry_dsn: SecretStr | None = None

    # Per-client rate limit of the sending routes, unless the client's entry sets "rate".
    rate_limit: str = Field("100/s", pattern=RATE_PATTERN)
    # When Redis is too slow to answer a rate-limit check in time: let the request through
    # (true) or refuse it with 503 (false).
    rate_limit_fail_open: bool = True
    rate_limit_timeout: float = Field(0.25, gt=0, le=5)

    # A comma list in the environment; the failover order. Unset: console outside production;
    # production must name them (empty here means unset).
    sms_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The service's own public base URL: providers' delivery receipts are asked for at
    # <this>/v1/receipts/<provider>, and Twilio's signatures are checked against it.
    public_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(:\d+)?(/\S*)?$")

    # Each call to Aliyun or Tencent gives up after this many seconds.
    sms_timeout: float = Field(10.0, gt=0)
    # Failover order by country calling code, e.g. {"86": ["aliyun", "tencent"]}; numbers of
    # other countries use NOTIFIER_SMS_PROVIDERS.
    sms_country_providers: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}$")], list[str]] = (
        Field(default_factory=dict)
    )

    # Bounces: each mail to one recipient is sent from bounces+<its token>@bounce_domain; the
    # MTA taking that domain's mail posts it to /v1/bounces?token=<bounce_token>.
    bounce_domain: str | None = Field(
        None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$"
    )
    bounce_token: UrlSafeToken | None = None
    # The bounce-rate guard (docs/deliverability.md): per client over a sliding 24 h, once it
    # sent this many mails, permanent bounces and complaints at these rates warn, then pause its
    # mail until an operator resumes it (`notifier clients resume <client>`).
    bounce_guard_min_volume: int = Field(500, ge=1)
    bounce_rate_warn: float = Field(0.05, gt=0, le=1)
    bounce_rate_pause: float = Field(0.10, gt=0, le=1)
    complaint_rate_warn: float = Field(0.001, gt=0, le=1)
    complaint_rate_pause: float = Field(0.005, gt=0, le=1)
    # Hosts an SNS signing certificate or confirmation URL may name (POST /v1/receipts/ses), a
    # comma list of patterns, * one DNS label (notifier/sns.py).
    sns_cert_hosts: Annotated[tuple[str, ...], NoDecode] = (
        "sns.*.amazonaws.com",
        "sns.*.amazonaws.com.cn",
    )
    # The operator's templates: a folder laid out as notifier/templates (mail/, sms/,
    # mail_captcha/) whose files replace the built-in ones of their names.
    templates_dir: DirectoryPath | None = None
    # DKIM keys by sending domain: {"example.com": {"selector": "s1", "private_key_file": ...}}.
    dkim_keys: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")], DkimEntry] = Field(
        default_factory=dict
    )
    # The product named in captcha texts ("Your Acme code is ...").
    product_name: str = Field("Notifier", min_length=1, max_length=40)
    captcha_length: int = Field(6, ge=4, le=10)
    captcha_ttl: int = Field(300, ge=10, le=3600)
    captcha_resend_interval: int = Field(60, ge=0, le=3600)
    captcha_max_attempts: int = Field(5, ge=1, le=100)
    captcha_daily_limit: int = Field(10, ge=1)
    # Sends to one phone in any 24 h from all clients together (each client has its own
    # captcha_daily_limit for it), so a phone cannot be bombed through many clients.
    captcha_phone_daily_ceiling: int = Field(30, ge=1)
    # The same for one mail address (a code by mail).
    captcha_address_daily_ceiling: int = Field(30, ge=1)
    # Sends from one end user's address (client_ip) in any hour for each client, and for all
    # clients together: one product's users cannot lock another's out behind one NAT.
    captcha_ip_hourly_limit: int = Field(30, ge=1)
    captcha_ip_hourly_ceiling: int = Field(90, ge=1)
    # The SMS fraud guard (comma lists in the environment): the countries a captcha may be
    # texted to (ISO 3166 alpha-2; empty: every country), and E.164 prefixes never texted.
    sms_allowed_countries: Annotated[frozenset[str], NoDecode] = frozenset()
    sms_blocked_prefixes: Annotated[tuple[str, ...], NoDecode] = ()
    # The key of the keyed hash of captcha codes. Development and testing keep one in the
    # state folder; production must set it (the same on every process).
    captcha_secret: SecretStr | None = None  # at least 16 characters, not spaces (below)

    @field_validator("captcha_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # Sixteen spaces are sixteen characters and no secret.
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters that are not spaces")
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _ascii_url(cls, value: object) -> object:
        # It goes into List-Unsubscribe and Twilio's StatusCallback as it is: a URL there is
        # ASCII (RFC 3986), and a header would carry it as encoded words no receiver reads.
        if isinstance(value, str) and not value.isascii():
            raise ValueError(
                "must be ASCII: write a host's non-ASCII name in its xn-- form, and percent-encode"
                " a path"
            )
        return value

    @field_validator("mail_default_sender")
    @classmethod
    def _one_mailbox(cls, value: str | None) -> str | None:
        # Written into From as given: one mailbox, "Name <address>" or the address alone, on a
        # header line a relay takes (RFC 5322: 998 octets).
        if value is None:
            return value
        value = value.strip()
        one = 'must be one mailbox: "Name <address>" or the address alone'
        if not value.endswith(">"):
            if "@" not in value or any(c.isspace() or c in '<>"' for c in value):
                raise ValueError(one)
            return value
        name, _, address = value.removesuffix(">").rpartition("<")
        # A quoted name may hold brackets ("Sales > Support" <a@example.com>): what is outside
        # its quotes may not.
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", name)
        if "<" in bare or ">" in bare or '"' in bare or "@" not in address or " " in address:
            raise ValueError(one)
        if len(name.encode()) > 900:
            raise ValueError("its display name is too long for a header line (900 octets at most)")
        return value

    @field_validator("state_dir", "templates_dir", mode="before")
    @classmethod
    def _a_folder(cls, value: object) -> object:
        # Path("") is the working directory: a folder no one meant (its templates, its state).
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: name a folder, or leave it unset")
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _a_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        # sentry_sdk.init raised BadDsn, a traceback, at the start of every process.
        if value is not None and value.get_secret_value():
            from sentry_sdk.utils import BadDsn, Dsn

            try:
                Dsn(value.get_secret_value())
            except BadDsn:
                raise ValueError("not a Sentry DSN (https://<key>@<host>/<project>)") from None
        return value

    retry_max: int = Field(8, ge=1, le=100)
    retry_base: float = Field(2.0, gt=0)
    retry_cap: float = Field(600.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        vendors = VendorVariables(settings_cls, env_settings, dotenv_settings)
        return init_settings, vendors, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="wrap")
    @classmethod
    def _vendors_read(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        """Each vendor's settings into its model; what a vendor needs of the rest, checked."""
        if not isinstance(data, dict):
            return handler(data)
        rest, vendors = vendors_read(data)
        settings = handler(rest)
        settings._vendors = vendors
        for vendor in vendors.values():
            vendor.check(settings)
        return settings

    @field_validator("console_users")
    @classmethod
    def _names_once(cls, users: list[ConsoleUser] | None) -> list[ConsoleUser] | None:
        names = [user.name for user in users or ()]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"names {', '.join(twice)} more than once")
        return users

    @field_validator("broker_url")
    @classmethod
    def _failover_list(cls, value: str | None) -> str | None:
        """A ``;``-separated list: the nodes of one RabbitMQ cluster, for kombu to fail over."""
        if value is None or ";" not in value:
            return value
        if not all(part.startswith(AMQP_SCHEMES) for part in value.split(";")):
            raise ValueError("a ;-separated list must be of amqp:// or amqps:// URLs only")
        return value

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        schemes = ("redis://", "rediss://", "redis+sentinel://", *AMQP_SCHEMES)
        if value is not None and not value.startswith(schemes):
            raise ValueError("must start with redis://, rediss://, redis+sentinel:// or amqp://")
        if value is not None:
            from notifier.redisconn import parse

            parse(value)
        return value

    @field_validator("dkim_keys")
    @classmethod
    def _dkim_keys_sign(cls, value: dict[str, DkimEntry]) -> dict[str, DkimEntry]:
        # Each key read and made to sign once, so a bad one stops the start-up.
        from notifier.providers.dkim import DkimError, DkimSigner, load_keys

        try:
            DkimSigner(load_keys(dkim_entries(value)))
        except DkimError as e:
            raise ValueError(str(e)) from None
        return value

    @field_validator("sms_providers", "mail_providers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            names = [name.strip() for name in value.split(",") if name.strip()]
            if not names:
                raise ValueError("must name at least one provider")
            return names
        return value

    @field_validator("mail_providers")
    @classmethod
    def _each_once(cls, names: list[str]) -> list[str]:
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"names {', '.join(twice)} more than once")
        return names

    @field_validator("mail_provider")
    @classmethod
    def _one_name(cls, name: str | None) -> str | None:
        if name is not None and "," in name:
            raise ValueError("one name; a failover order goes in NOTIFIER_MAIL_PROVIDERS")
        return name

    @field_validator("sns_cert_hosts", mode="before")
    @classmethod
    def _host_patterns(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(pattern.strip() for pattern in value.split(",") if pattern.strip())
        if isinstance(value, tuple | list):
            # Imported here: notifier.sns loads requests and ssl, which the web's gunicorn config
            # must patch (gevent) before anything takes ssl's classes, and it imports this first.
            from notifier.sns import host_pattern

            host_pattern(value)  # a pattern that is not one stops start-up, naming it
        return value

    @field_validator("sms_allowed_countries", mode="before")
    @classmethod
    def _countries(cls, value: object) -> object:
        if isinstance(value, str):
            import phonenumbers

            codes = {code.strip().upper() for code in value.split(",") if code.strip()}
            unknown = sorted(codes - phonenumbers.SUPPORTED_REGIONS - ISO_WITHOUT_NUMBERS)
            if unknown:
                raise ValueError(f"not ISO 3166 alpha-2 country codes: {', '.join(unknown)}")
            return frozenset(codes)
        return value

    @field_validator("sms_blocked_prefixes", mode="before")
    @classmethod
    def _prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            prefixes = tuple(p.strip().replace(" ", "") for p in value.split(",") if p.strip())
            bad = [p for p in prefixes if not re.fullmatch(r"\+[1-9]\d{0,14}", p)]
            if bad:
                raise ValueError(f"E.164 prefixes are + and up to 15 digits: {', '.join(bad)}")
            return prefixes
        return value

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        """What an unset setting means in each environment: decided here, and only here."""
        if not isinstance(data, dict):
            return data
        env = str(data.get("env") or Environment.DEVELOPMENT)
        one, route = data.get("mail_provider"), data.get("mail_providers")
        if one is not None and route is not None:
            raise ValueError(
                "NOTIFIER_MAIL_PROVIDER and NOTIFIER_MAIL_PROVIDERS are both set: set one, the "
                "list (failover order) or the one name"
            )
        unset = "smtp" if env == Environment.PRODUCTION else "outbox"
        defaults: dict[str, Any] = {
            "mail_providers": [one if one is not None else unset],
            "log_format": "text" if env == Environment.DEVELOPMENT else "json",
        }
        if env != Environment.PRODUCTION:
            defaults["sms_providers"] = ["console"]
        return {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}

    @model_validator(mode="after")
    def _providers_complete(self) -> Settings:
        self._check_sms_providers()
        self._check_modes()
        return self

    @model_validator(mode="after")
    def _state_is_redis(self) -> Settings:
        if self.redis_url is not None and self.redis_url.startswith(("amqp", "pyamqp")):
            raise ValueError(
                "NOTIFIER_REDIS_URL: must be a redis://, rediss:// or redis+sentinel:// URL"
            )
        return self

    @model_validator(mode="after")
    def _quorum_is_rabbitmq(self) -> Settings:
        if self.broker_queue_type == "quorum" and not self.broker_is_rabbitmq:
            raise ValueError(
                "NOTIFIER_BROKER_QUEUE_TYPE: quorum needs an amqp:// NOTIFIER_BROKER_URL (RabbitMQ)"
            )
        return self

    @model_validator(mode="after")
    def _production_complete(self) -> Settings:
        if self.env is not Environment.PRODUCTION:
            return self
        unset = {
            "redis_url": self.redis_url is None,
            "api_keys": self.api_keys is None,  # an empty list is a choice: no clients yet
            "sms_providers": not self.sms_providers,
            "captcha_secret": self.captcha_secret is None,
        }
        for name, missing in unset.items():
            if missing:
                raise ValueError(f"{ENV_PREFIX}{name.upper()}: required in production")
        senders = [name for name in self.mail_providers if name in SENDING_PROVIDERS]
        if senders and not self.mail_default_sender:
            raise ValueError(
                f"NOTIFIER_MAIL_DEFAULT_SENDER: required in production with the {senders[0]} "
                "provider"
            )
        self._check_callbacks()
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for kind in ("bounce", "complaint"):
            if getattr(self, f"{kind}_rate_warn") > getattr(self, f"{kind}_rate_pause"):
                raise ValueError(
                    f"NOTIFIER_{kind.upper()}_RATE_WARN: must not exceed "
                    f"NOTIFIER_{kind.upper()}_RATE_PAUSE"
                )
        if self.retry_base > self.retry_cap:
            raise ValueError("NOTIFIER_RETRY_BASE: must not exceed NOTIFIER_RETRY_CAP")
        if self.retry_cap >= self.broker_visibility_timeout:
            # A retry parked longer than the visibility timeout would be handed out twice.
            raise ValueError("NOTIFIER_RETRY_CAP: must be below NOTIFIER_BROKER_VISIBILITY_TIMEOUT")
        # A record and its content are kept STATUS_TTL from their last write: they must outlive
        # a wait in a backlog and every retry, or a notification still to be sent is lost.
        open_for = self.retry_max * self.retry_cap + self.broker_visibility_timeout
        if self.status_ttl < (least := max(MIN_STATUS_TTL, math.ceil(open_for))):
            raise ValueError(
                f"NOTIFIER_STATUS_TTL: at least {least} s (a day, and more than every retry"
                " takes: NOTIFIER_RETRY_MAX times NOTIFIER_RETRY_CAP, and the visibility"
                " timeout), or a notification still waiting or retrying expires unsent"
            )
        return self

    def _check_callbacks(self) -> None:
        """In production a callback goes over https, and never to an address that is not public.

        A host name is resolved and checked again when each callback is sent (and the connected
        address once more), since what it resolves to can change.
        """
        from notifier.webhooks import literal_host_refused

        for index, client in enumerate(self.api_keys or []):
            if client.callback_url is None:
                continue
            where = f"NOTIFIER_API_KEYS: callback_url of {client.client!r} (at {index})"
            if not client.callback_url.startswith("https://"):
                raise ValueError(f"{where}: must be https in production")
            if literal_host_refused(client.callback_url):
                raise ValueError(
                    f"{where}: must not point at a private, loopback or link-local address"
                )

    def _check_modes(self) -> None:
        """A client's keys are all live or all test keys: everything is kept by client name
        (codes, records, idempotency, limits), so a test key named as a live client would read
        that client's live login codes (a test-mode captcha shows its code) and replace them."""
        modes: dict[str, str] = {}
        for index, client in enumerate(self.api_keys or ()):
            first = modes.setdefault(client.client, client.mode)
            if first != client.mode:
                raise ValueError(
                    f"NOTIFIER_API_KEYS: {client.client!r} (at {index}) has both live and test "
                    "keys; give the test key a client of its own (e.g. "
                    f"{client.client + '-test'!r})"
                )

    def _check_sms_providers(self) -> None:
        if any(not names for names in self.sms_country_providers.values()):
            raise ValueError("NOTIFIER_SMS_COUNTRY_PROVIDERS: each country needs a provider")
        unknown = sorted(
            code
            for code in self.sms_country_providers
            if int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        )
        if unknown:
            # A typo ("85" for "852") would route no number, unsaid.
            raise ValueError(
                f"NOTIFIER_SMS_COUNTRY_PROVIDERS: {unknown[0]!r} is no country calling code"
            )
        listed = {*self.sms_providers, *chain.from_iterable(self.sms_country_providers.values())}
        for client in self.api_keys or ():
            # A sender for a provider that sends nothing here is a typo more often than not.
            if unlisted := sorted(set(client.sms_sender) - listed):
                raise ValueError(
                    f"NOTIFIER_API_KEYS: sms_sender of {client.client!r} names {unlisted}, "
                    "not among NOTIFIER_SMS_PROVIDERS or NOTIFIER_SMS_COUNTRY_PROVIDERS"
                )

    def vendor(self, kind: type[V]) -> V:
        """The settings of the vendor whose model is ``kind``, as read."""
        found = self._vendors.get(kind)
        if not isinstance(found, kind):
            raise LookupError(f"{kind.__name__} is not the settings model of a registered vendor")
        return found

    @property
    def providers_listed(self) -> frozenset[str]:
        """Every provider named: the mail providers, NOTIFIER_SMS_PROVIDERS, each country's."""
        countries = self.sms_country_providers.values()
        return frozenset(
            {*self.mail_providers, *self.sms_providers, *chain.from_iterable(countries)}
        )

    @property
    def mail_providers_variable(self) -> str:
        """The variable that named the mail providers, for a message about one of them."""
        one = self.mail_provider is not None
        return "NOTIFIER_MAIL_PROVIDER" if one else "NOTIFIER_MAIL_PROVIDERS"

    @property
    def min_replicas(self) -> int:
        """NOTIFIER_REDIS_MIN_REPLICAS, or its default: 1 behind sentinels, else 0."""
        if self.redis_min_replicas is not None:
            return self.redis_min_replicas
        return 1 if (self.redis_url or "").startswith("redis+sentinel://") else 0

    @property
    def broker_is_rabbitmq(self) -> bool:
        """Whether the broker is RabbitMQ (an amqp:// URL) rather than a Redis."""
        return self.broker_url is not None and self.broker_url.startswith(AMQP_SCHEMES)

    @property
    def task_time_limit(self) -> int:
        """Seconds a task may run: five minutes, but always well inside the visibility timeout."""
        return max(2, min(300, self.broker_visibility_timeout // 2))

    @property
    def captcha_time_limit(self) -> int:
        """Seconds a code's attempt may run (its claim's lease): a third of the code's life, at
        least 30 s, never past the task time limit. A worker that dies mid-code leaves its claim
        to run out while the code is still worth sending: with the task time limit's 300 s, a
        5-minute code's second copy could only claim it as it expired."""
        return min(self.task_time_limit, max(30, self.captcha_ttl // 3))


def dkim_entries(keys: dict[str, DkimEntry]) -> dict[str, dict[str, str]]:
    """``NOTIFIER_DKIM_KEYS`` as :func:`notifier.providers.dkim.load_keys` takes it."""
    return {
        domain: {"selector": e.selector}
        | (
            {"private_key": e.private_key.get_secret_value()}
            if e.private_key is not None
            else {"private_key_file": str(e.private_key_file)}
        )
        for domain, e in keys.items()
    }
