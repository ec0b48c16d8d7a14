"""The API's callers, as ``NOTIFIER_API_KEYS`` lists them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Scope = Literal["mail", "sms", "upload"]
RATE_PATTERN = r"^[1-9][0-9]*/(s|m|h)$"
# A provider's name (as NOTIFIER_SMS_PROVIDERS lists it), and a sender for it: one line of
# printable text (a Twilio number or service, a Chinese sign name).
ProviderName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
SenderValue = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
# An upload store's name, as its route names it (/v1/uploads/<store>/token).
StoreName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
KeyPrefix = Annotated[str, Field(min_length=1, max_length=200)]
# The older fields of an entry, each read as one store's entry of "buckets" or "key_prefixes".
OLDER_FIELDS = {
    "qiniu_buckets": ("buckets", "qiniu"),
    "s3_buckets": ("buckets", "s3"),
    "qiniu_key_prefix": ("key_prefixes", "qiniu"),
    "s3_key_prefix": ("key_prefixes", "s3"),
}


class ApiClient(BaseModel):
    """One caller of the API, as listed in ``NOTIFIER_API_KEYS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: frozenset[Scope] = frozenset()
    # The buckets this client may upload to, by store: {"oss": ["avatars"], "s3": [...]}; the
    # older "qiniu_buckets" and "s3_buckets" are read as the qiniu and s3 entries.
    buckets: dict[StoreName, frozenset[str]] = Field(default_factory=dict)
    # Where a store has one, this client's forms for it only allow keys under that prefix:
    # {"oss": "tenant-7/"}; "qiniu_key_prefix" and "s3_key_prefix" are read the same way.
    key_prefixes: dict[StoreName, KeyPrefix] = Field(default_factory=dict)
    # Requests a client may make to the sending routes, e.g. "100/s", "600/m"; else the default.
    rate: str | None = Field(default=None, pattern=RATE_PATTERN)
    # Where Notifier POSTs each final or receipt status, signed with the secret (Standard
    # Webhooks: "whsec_" and base64 of at least 16 bytes).
    callback_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+\S*$", max_length=2048
    )
    callback_secret: SecretStr | None = None
    # This client's SMS sender, by provider: {"twilio": "+15005550006" (a From, or a Messaging
    # Service SID "MG..."), "aliyun": "<sign name>", "tencent": "<sign name>"}; a provider it
    # does not name sends from the settings' sender.
    sms_sender: dict[ProviderName, SenderValue] = Field(default_factory=dict)
    # "test": requests are handled as a live client's are, but delivery is simulated from the
    # recipient and no provider is ever called (see README "Testing your integration").
    mode: Literal["live", "test"] = "live"

    @model_validator(mode="before")
    @classmethod
    def _older_fields(cls, data: Any) -> Any:
        """Read the older per-store fields into ``buckets`` and ``key_prefixes``; an entry that
        names a store both ways is refused (which one it meant cannot be told)."""
        if not isinstance(data, dict) or not OLDER_FIELDS.keys() & data.keys():
            return data
        read = {**data, "buckets": dict(data.get("buckets") or {}),
                "key_prefixes": dict(data.get("key_prefixes") or {})}  # fmt: skip
        for field, (into, store) in OLDER_FIELDS.items():
            if field not in data:
                continue
            value = read.pop(field)
            if store in read[into]:
                raise ValueError(
                    f"client {data.get('client')!r} names the {store} store both in {field} and "
                    f"in {into}: give one"
                )
            if value is not None:
                read[into][store] = value
        return read

    @field_validator("key_prefixes")
    @classmethod
    def _plain_prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        # A prefix that is no path of plain segments would confine nothing (see objectkeys).
        from notifier.objectkeys import fault

        for store, prefix in value.items():
            why = fault(prefix, prefix=True)
            if why is not None:
                raise ValueError(f"{store}: {why}")
        return value

    def upload_buckets(self, store: str) -> frozenset[str]:
        """The buckets of ``store`` this client may upload to: none unless listed."""
        return self.buckets.get(store, frozenset())

    def upload_prefix(self, store: str) -> str | None:
        """The key prefix this client's uploads to ``store`` are confined to, or None."""
        return self.key_prefixes.get(store)

    @model_validator(mode="after")
    def _callback_pair(self) -> ApiClient:
        if (self.callback_url is None) != (self.callback_secret is None):
            raise ValueError("callback_url and callback_secret go together")
        if self.callback_secret is not None:
            from notifier.webhooks import secret_key

            secret_key(self.callback_secret.get_secret_value())
        return self
