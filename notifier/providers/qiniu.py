"""Qiniu upload tokens, minted with the ``qiniu`` SDK's ``Auth.upload_token``; Qiniu as an
upload store (:class:`QiniuUploads`)."""

from __future__ import annotations

import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from qiniu import Auth

from notifier.errors import Refused
from notifier.schemas import UploadToken, UploadTokenRequest
from notifier.settings import Settings, VendorSettings, https_in_production, text
from notifier.timestamps import rfc3339
from notifier.webhooks import literal_host_refused


class QiniuSettings(VendorSettings):
    """``NOTIFIER_QINIU_*``: the keys tokens are signed with, and the upload URL given with them."""

    prefix: ClassVar[str] = "qiniu"

    access_key: str | None = None
    secret_key: SecretStr | None = None
    upload_url: str = Field(default="https://upload.qiniup.com", pattern=r"^https?://\S+$")

    def check(self, settings: Settings) -> None:
        # The browser uploads there: over http, the file and the token cross in cleartext.
        super().check(settings)
        if self.access_key:  # the store is in use
            https_in_production(settings, self.variable("upload_url"), self.upload_url)


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


def callback_urls(callback_url: str) -> list[str]:
    """The URLs Qiniu calls for ``callback_url``, as Qiniu reads it: a list split at ";", each
    tried when the one before failed. Qiniu's put policy, ``callbackUrl``
    (https://developer.qiniu.com/kodo/1206/put-policy): "出于高可用的考虑，本字段允许设置多个
    callbackUrl（用英文符号 ; 分隔），在前一个 callbackUrl 请求失败的时候会依次重试下一个
    callbackUrl" (several URLs, separated by ";", each tried in turn when the one before fails).
    """
    return callback_url.split(";")


def _callback_fault(url: str, *, production: bool) -> str | None:
    """Why Qiniu must not be told to call ``url``; None when it may. Each URL of the list is
    held to the rule one URL is: an http(s) URL with a host, and in production https to a host
    that is not, as written, a private, loopback or link-local address (Qiniu calls it from the
    internet: a name is Qiniu's to resolve)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an IPv6 address's "[" left open
        parts = None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
        return "not an http(s) URL with a host"
    if production and parts.scheme != "https":
        return "must be https:// in production"
    if production and literal_host_refused(url):
        return "must not point at a private, loopback or link-local address in production"
    return None


class QiniuUploads:
    """Qiniu as an upload store: an upload token for its form upload (or its SDKs)."""

    name, title, request = "qiniu", "Qiniu", UploadTokenRequest

    def __init__(self, settings: QiniuSettings) -> None:
        keys = settings.access_key and settings.secret_key
        self._tokens = QiniuTokens(settings) if keys else None
        self._upload_url = settings.upload_url

    def check(self, request: UploadTokenRequest, *, require_https: bool) -> None:
        if request.callback_url is not None:
            for url in callback_urls(request.callback_url):
                why = _callback_fault(url, production=require_https)
                if why is not None:
                    raise Refused("callback_url", f"{url}: {why}")
            if request.callback_body is None:
                raise Refused("callback_body", "required with callback_url")
        elif request.callback_body is not None:
            raise Refused("callback_url", "required with callback_body")

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
