"""Tencent Cloud COS browser upload forms (POST Object), signed here: COS's Python SDK
(``cos-python-sdk-v5``) signs requests and presigned URLs, not forms.

The form follows Tencent's "POST Object" page, "Signature protection"
(https://www.tencentcloud.com/document/product/436/14690, docs/research/cos-gcs-post-forms.md):
a JSON policy (``expiration`` and ``conditions``) sent base64-encoded as ``policy``; a key time
``<start>;<end>`` (Unix seconds) sent as ``q-key-time`` and named by the policy as
``q-sign-time``; and ``q-signature``, the hex HMAC-SHA1 keyed with the SignKey (the hex
HMAC-SHA1 of the key time keyed with the secret key) over the hex SHA-1 of the policy's JSON
text, not of its base64. Minting calls no one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from notifier.providers.forms import conditions, form_key
from notifier.schemas import CosUploadRequest, S3UploadForm
from notifier.settings import (
    Settings,
    StoreEndpoint,
    VendorSettings,
    https_in_production,
    text,
)
from notifier.timestamps import rfc3339

# The key time starts this much before now: a COS whose clock is a little behind ours still
# takes the form at once (cos-python-sdk-v5 signs its requests from a minute back, too).
SKEW = 60


class CosSettings(VendorSettings):
    """``NOTIFIER_COS_*``: the API key forms are signed with, and where they are posted: the
    region's own host (``https://<bucket>.cos.<region>.myqcloud.com``), or ``<endpoint>/<bucket>``
    with an endpoint."""

    prefix: ClassVar[str] = "cos"

    secret_id: str | None = None
    secret_key: SecretStr | None = None
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    endpoint: StoreEndpoint | None = None

    def check(self, settings: Settings) -> None:
        """In production the endpoint is https: browsers post the form there from https pages."""
        https_in_production(settings, self.variable("endpoint"), self.endpoint, here=False)


def signature(secret_key: str, key_time: str, policy: str) -> str:
    """COS's ``q-signature`` of a policy's JSON text for ``key_time`` ("<start>;<end>")."""
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    to_sign = hashlib.sha1(policy.encode()).hexdigest()
    return hmac.new(sign_key.encode(), to_sign.encode(), hashlib.sha1).hexdigest()


class CosUploads:
    """Tencent COS as an upload store: a POST Object form."""

    name, title, request = "cos", "COS", CosUploadRequest

    def __init__(self, settings: CosSettings) -> None:
        self._settings = settings

    def check(self, request: CosUploadRequest, *, require_https: bool) -> None:
        pass  # the model holds every rule: nothing depends on another field or the environment

    def missing(self) -> str | None:
        s = self._settings
        return s.unset("secret_id", "secret_key") or (None if s.endpoint else s.unset("region"))

    def url(self, bucket: str) -> str:
        """Where the form is posted."""
        s = self._settings
        if s.endpoint:
            return f"{s.endpoint}/{bucket}"
        return f"https://{bucket}.cos.{s.region}.myqcloud.com"

    def mint(self, request: CosUploadRequest) -> S3UploadForm:
        s = self._settings
        now = int(time.time())
        end = now + request.expires_in
        key_time = f"{now - SKEW};{end}"
        fields, rules = conditions(request)
        fields["key"] = form_key(request)
        # COS puts the file's name in the key before it checks the policy: with a prefix, the
        # policy holds the prefix alone (the page's, or the client's it was confined to).
        rules.append(
            {"key": request.key} if request.key is not None
            else ["starts-with", "$key", request.key_prefix or ""]
        )  # fmt: skip
        policy: dict[str, Any] = {
            "expiration": rfc3339(end),
            "conditions": [
                {"bucket": request.bucket},
                *rules,
                {"q-sign-algorithm": "sha1"},
                {"q-ak": s.secret_id},
                {"q-sign-time": key_time},
            ],
        }
        document = json.dumps(policy, separators=(",", ":"))
        fields.update(
            {
                "policy": base64.b64encode(document.encode()).decode(),
                "q-sign-algorithm": "sha1",
                "q-ak": text(s.secret_id),
                "q-key-time": key_time,
                "q-signature": signature(text(s.secret_key), key_time, document),
            }
        )
        return S3UploadForm(
            url=self.url(request.bucket),
            fields=fields,
            bucket=request.bucket,
            key=request.key,
            expires_at=rfc3339(end),
        )
