"""Aliyun OSS browser upload forms: PostObject with the V4 signature, made here.

Neither Aliyun SDK has a helper for them (``alibabacloud-oss-v2`` builds one by hand in its
``sample/post_object.py``; aliyun/alibabacloud-oss-java-sdk-v2#123 asks for one), so this module
signs the form as Aliyun's "POST V4 signature" page states it, and the tests hold a local OSS
that checks it to what that sample signs (``docs/research/oss-post-object.md``):

- the policy, JSON with ``expiration`` (ISO 8601, UTC) and ``conditions``: the bucket, the key
  (``eq``, or ``starts-with`` its prefix), ``content-length-range``, the content type, and the
  form's own ``x-oss-signature-version``, ``x-oss-credential`` and ``x-oss-date``;
- ``policy``, its base64, which is the string to sign;
- ``x-oss-signature``, hex HMAC-SHA256 of that string with the V4 signing key: HMAC-SHA256 in
  turn of the date (``YYYYMMDD``), the region, ``oss`` and ``aliyun_v4_request``, starting from
  ``"aliyun_v4" + AccessKeySecret``; ``x-oss-credential`` names the same
  (``<AccessKeyId>/<date>/<region>/oss/aliyun_v4_request``).

The browser POSTs the fields, then the file (last), to the bucket's URL; OSS checks the
signature and every condition. No request leaves Notifier to mint a form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from notifier.providers.forms import conditions, form_key
from notifier.schemas import OssUploadRequest, S3UploadForm
from notifier.settings import (
    Settings,
    StoreEndpoint,
    VendorSettings,
    https_in_production,
    text,
)
from notifier.timestamps import rfc3339

ALGORITHM = "OSS4-HMAC-SHA256"
SERVICE, TERMINATOR = "oss", "aliyun_v4_request"


class OssSettings(VendorSettings):
    """``NOTIFIER_OSS_*``: the AccessKey forms are signed with, the region of the V4 credential
    (``cn-hangzhou``), and an endpoint when forms go elsewhere than Aliyun's own bucket host."""

    prefix: ClassVar[str] = "oss"

    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    region: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    endpoint: StoreEndpoint | None = None

    @field_validator("region")
    @classmethod
    def _region_id(cls, value: str | None) -> str | None:
        # The V4 credential and the bucket host (<bucket>.oss-<region>.aliyuncs.com) take the
        # region's ID, cn-hangzhou; the endpoint's name for it, oss-cn-hangzhou, signed forms
        # for a host that does not exist.
        if value is not None and value.startswith("oss-"):
            raise ValueError(f"the region's ID, {value.removeprefix('oss-')!r}, without 'oss-'")
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> OssSettings:
        self.paired("access_key_id", "access_key_secret")
        return self

    def check(self, settings: Settings) -> None:
        """In production the endpoint is https: browsers post the form there from https pages,
        with the signature in it."""
        https_in_production(settings, self.variable("endpoint"), self.endpoint, here=False)


def signing_key(secret: str, date: str, region: str) -> bytes:
    """The V4 signing key of ``secret`` for one day (``YYYYMMDD``) in ``region``."""
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, SERVICE, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class OssUploads:
    """Aliyun OSS as an upload store: a PostObject form, V4-signed."""

    name, title, request = "oss", "Aliyun OSS", OssUploadRequest

    def __init__(self, settings: OssSettings) -> None:
        self._settings = settings

    def check(self, request: OssUploadRequest, *, require_https: bool) -> None:
        pass  # the model holds every rule (OSS's bucket names, its 1023-byte keys)

    def missing(self) -> str | None:
        return self._settings.unset("access_key_id", "access_key_secret", "region")

    def mint(self, request: OssUploadRequest) -> S3UploadForm:
        s = self._settings
        region = text(s.region)
        signed_at = datetime.now(UTC).replace(microsecond=0)
        date, stamp = signed_at.strftime("%Y%m%d"), signed_at.strftime("%Y%m%dT%H%M%SZ")
        expiration = signed_at + timedelta(seconds=request.expires_in)
        signing = {
            "x-oss-signature-version": ALGORITHM,
            "x-oss-credential": f"{s.access_key_id}/{date}/{region}/{SERVICE}/{TERMINATOR}",
            "x-oss-date": stamp,
        }
        key = form_key(request)
        # OSS stores the type x-oss-content-type names before the file part's own header and the
        # Content-Type field (PostObject): with the Content-Type field alone in the policy, a
        # page could have the file stored as text/html past a form for image/png.
        own, rules = conditions(request, ("Content-Type", "x-oss-content-type"))
        named: list[Any] = (
            ["eq", "$key", key] if request.key is not None
            else ["starts-with", "$key", request.key_prefix or ""]
        )  # fmt: skip
        policy = {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [
                {"bucket": request.bucket},
                *({name: value} for name, value in signing.items()),
                named,
                *rules,
            ],
        }
        encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
        signature = hmac.new(
            signing_key(text(s.access_key_secret), date, region), encoded.encode(), hashlib.sha256
        ).hexdigest()
        return S3UploadForm(
            url=self._url(request.bucket),
            fields={"key": key, **own, "policy": encoded, **signing, "x-oss-signature": signature},
            bucket=request.bucket,
            key=request.key,
            expires_at=rfc3339(expiration.timestamp()),
        )

    def _url(self, bucket: str) -> str:
        """Path-style under an endpoint; else the bucket's own host in the region."""
        if self._settings.endpoint:
            return f"{self._settings.endpoint}/{bucket}"
        return f"https://{bucket}.oss-{self._settings.region}.aliyuncs.com"
