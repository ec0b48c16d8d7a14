"""The API's callers, as ``NOTIFIER_API_KEYS`` lists them."""

from __future__ import annotations

from typing import Annotated, Literal

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


class ApiClient(BaseModel):
    """One caller of the API, as listed in ``NOTIFIER_API_KEYS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: frozenset[Scope] = frozenset()
    qiniu_buckets: frozenset[str] = frozenset()
    # When set, this client's upload tokens only allow keys under this prefix.
    qiniu_key_prefix: str | None = Field(default=None, min_length=1, max_length=200)
    # The same for S3 (and S3-compatible) upload forms.
    s3_buckets: frozenset[str] = frozenset()
    s3_key_prefix: str | None = Field(default=None, min_length=1, max_length=200)
    # The same for the other stores, by the store's name: {"cos": ["avatars-1250000000"]} and
    # {"cos": "tenant-7/"}.
    buckets: dict[StoreName, frozenset[str]] = Field(default_factory=dict)
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

    @field_validator("qiniu_key_prefix", "s3_key_prefix")
    @classmethod
    def _a_prefix(cls, value: str | None) -> str | None:
        # A prefix that is no path of plain segments would confine nothing (see objectkeys).
        from notifier.objectkeys import fault

        why = None if value is None else fault(value, prefix=True)
        if why is not None:
            raise ValueError(why)
        return value

    @field_validator("key_prefixes")
    @classmethod
    def _prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        from notifier.objectkeys import fault

        for store, prefix in value.items():
            why = fault(prefix, prefix=True)
            if why is not None:
                raise ValueError(f"{store}: {why}")
        return value

    @model_validator(mode="after")
    def _callback_pair(self) -> ApiClient:
        if (self.callback_url is None) != (self.callback_secret is None):
            raise ValueError("callback_url and callback_secret go together")
        if self.callback_secret is not None:
            from notifier.webhooks import secret_key

            secret_key(self.callback_secret.get_secret_value())
        return self
