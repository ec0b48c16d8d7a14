"""Qiniu upload tokens: check what a client may upload, then mint the token."""

from __future__ import annotations

from typing import Any

from config import ApiClient
from notifier.errors import FieldError, Forbidden, ServiceUnavailable, Unprocessable
from notifier.providers.qiniu import QiniuTokens
from notifier.schemas import UploadToken, UploadTokenRequest
from notifier.timestamps import rfc3339

# Our field names mapped to Qiniu's put-policy names.
POLICY_FIELDS = {
    "insert_only": "insertOnly",
    "fsize_limit": "fsizeLimit",
    "mime_limit": "mimeLimit",
    "callback_url": "callbackUrl",
    "callback_body": "callbackBody",
    "return_body": "returnBody",
}


def _invalid(field: str, msg: str) -> Unprocessable:
    return Unprocessable("the body is not valid", errors=[FieldError(("body", field), msg)])


def put_policy(request: UploadTokenRequest, *, require_https: bool) -> dict[str, Any]:
    """The put policy the request asks for, in Qiniu's names and types."""
    if request.key is not None and request.key_prefix is not None:
        raise _invalid("key_prefix", "give key or key_prefix, not both")
    if request.callback_url is not None:
        if require_https and not request.callback_url.startswith("https://"):
            raise _invalid("callback_url", "must be https:// in production")
        if request.callback_body is None:
            raise _invalid("callback_body", "required with callback_url")
    elif request.callback_body is not None:
        raise _invalid("callback_url", "required with callback_body")
    policy: dict[str, Any] = {}
    for ours, theirs in POLICY_FIELDS.items():
        value = getattr(request, ours)
        if value is None or value is False:
            continue
        # Qiniu wants integers, not JSON booleans, for its switches.
        policy[theirs] = 1 if value is True else value
    if request.key_prefix is not None:
        policy["isPrefixalScope"] = 1
    return policy


def _confine(request: UploadTokenRequest, client: ApiClient) -> UploadTokenRequest:
    """Keep a client with a key prefix of its own under it; a token without a key gets it."""
    prefix = client.qiniu_key_prefix
    if prefix is None:
        return request
    asked = request.key if request.key is not None else request.key_prefix
    if asked is None:
        return request.model_copy(update={"key_prefix": prefix})
    if not asked.startswith(prefix):
        raise Forbidden(f"client {client.client!r} may only upload keys under {prefix!r}")
    return request


def mint_upload_token(
    request: UploadTokenRequest,
    *,
    client: ApiClient,
    tokens: QiniuTokens | None,
    upload_url: str,
    require_https: bool,
) -> UploadToken:
    """Check the request against the client's buckets and prefix, and mint its token."""
    if request.bucket not in client.qiniu_buckets:
        raise Forbidden(f"client {client.client!r} may not upload to bucket {request.bucket!r}")
    request = _confine(request, client)
    policy = put_policy(request, require_https=require_https)
    if tokens is None:
        raise ServiceUnavailable(
            "upload tokens are not configured: set NOTIFIER_QINIU_ACCESS_KEY and NOTIFIER_QINIU_SECRET_KEY"
        )
    scoped_key = request.key if request.key is not None else request.key_prefix
    token, deadline = tokens.upload_token(
        bucket=request.bucket, key=scoped_key, expires_in=request.expires_in, policy=policy
    )
    return UploadToken(
        token=token,
        bucket=request.bucket,
        key=request.key,
        expires_at=rfc3339(deadline),
        upload_url=upload_url,
    )
