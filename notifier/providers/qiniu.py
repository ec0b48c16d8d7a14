"""Qiniu upload tokens, minted with the ``qiniu`` SDK's ``Auth.upload_token``; Qiniu as an
upload store (:class:`QiniuUploads`)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from qiniu import Auth

from notifier.errors import Unprocessable
from notifier.schemas import UploadToken, UploadTokenRequest
from notifier.settings import ApiClient, VendorSettings, text
from notifier.timestamps import rfc3339


class QiniuSettings(VendorSettings):
    """``NOTIFIER_QINIU_*``: the keys tokens are signed with, and the upload URL given with them."""

    prefix: ClassVar[str] = "qiniu"

    access_key: str | None = None
    secret_key: SecretStr | None = None
    upload_url: str = Field(default="https://upload.qiniup.com", pattern=r"^https?://\S+$")


class QiniuTokens:
    """Mint upload tokens; pure computation (an HMAC-SHA1 of the policy), no network."""

    name = "qiniu"

    def __init__(self, settings: QiniuSettings) -> None:
        self._auth = Auth(text(settings.access_key), text(settings.secret_key))

    def upload_token(
        self, *, bucket: str, key: str | None, expires_in: int, policy: dict[str, Any]
    ) -> tuple[str, int]:
        """The token and its deadline (Unix seconds) for ``policy`` on ``bucket`` (and ``key``).

        The SDK's strict mode silently drops policy fields it does not know; a token that lost
        any field it was asked for would allow more than asked, so that is an error here.
        """
        token = self._auth.upload_token(bucket, key=key, expires=expires_in, policy=policy)
        _, _, minted = Auth.up_token_decode(token)
        dropped = sorted(set(policy) - set(minted))
        if dropped:
            raise RuntimeError(f"the qiniu SDK dropped policy fields: {', '.join(dropped)}")
        deadline = int(minted["deadline"])
        if abs(deadline - (time.time() + expires_in)) > 5:
            raise RuntimeError("the qiniu SDK set an unexpected deadline")
        return token, deadline


FILENAME = "$(fname)"  # Qiniu's magic variable for the uploaded file's name
# Our field names mapped to Qiniu's put-policy names.
POLICY_FIELDS = {
    "insert_only": "insertOnly",
    "fsize_limit": "fsizeLimit",
    "mime_limit": "mimeLimit",
    "callback_url": "callbackUrl",
    "callback_body": "callbackBody",
    "return_body": "returnBody",
}


def put_policy(request: UploadTokenRequest) -> dict[str, Any]:
    """The put policy the request asks for, in Qiniu's names and types."""
    policy: dict[str, Any] = {}
    for ours, theirs in POLICY_FIELDS.items():
        value = getattr(request, ours)
        if value is None or value is False:
            continue
        # Qiniu wants integers, not JSON booleans, for its switches.
        policy[theirs] = 1 if value is True else value
    if request.key_prefix is not None:
        policy["isPrefixalScope"] = 1
        # A form upload without a key is named by saveKey, or else by the file's hash, which is
        # outside the prefix and refused: the prefix and the file's own name, as S3's ${filename}.
        policy["saveKey"] = request.key_prefix + FILENAME
    return policy


class QiniuUploads:
    """Qiniu as an upload store: an upload token for its form upload (or its SDKs)."""

    name, title, request = "qiniu", "Qiniu", UploadTokenRequest

    def __init__(self, settings: QiniuSettings) -> None:
        keys = settings.access_key and settings.secret_key
        self._tokens = QiniuTokens(settings) if keys else None
        self._upload_url = settings.upload_url

    def buckets(self, client: ApiClient) -> frozenset[str]:
        return client.qiniu_buckets

    def key_prefix(self, client: ApiClient) -> str | None:
        return client.qiniu_key_prefix

    def check(self, request: UploadTokenRequest, *, require_https: bool) -> None:
        if request.callback_url is not None:
            if require_https and not request.callback_url.startswith("https://"):
                raise Unprocessable.field("callback_url", "must be https:// in production")
            if request.callback_body is None:
                raise Unprocessable.field("callback_body", "required with callback_url")
        elif request.callback_body is not None:
            raise Unprocessable.field("callback_url", "required with callback_body")

    def missing(self) -> str | None:
        return None if self._tokens else "NOTIFIER_QINIU_ACCESS_KEY and NOTIFIER_QINIU_SECRET_KEY"

    def mint(self, request: UploadTokenRequest) -> UploadToken:
        assert self._tokens is not None  # missing() said so
        token, deadline = self._tokens.upload_token(
            bucket=request.bucket,
            key=request.key if request.key is not None else request.key_prefix,
            expires_in=request.expires_in,
            policy=put_policy(request),
        )
        return UploadToken(
            token=token, bucket=request.bucket, key=request.key, expires_at=rfc3339(deadline),
            upload_url=self._upload_url,
        )  # fmt: skip
