"""Upload tokens and forms for browsers: check what a client may upload, then let the store's
adapter mint it. One path for every store (Qiniu, S3, OSS, COS, GCS, any store to come); an adapter
(:class:`~notifier.providers.base.UploadStore`) says what differs.

The order of refusals is the contract's, for every store: the body (422 naming the field: the
model's rules, then the keys' (:mod:`notifier.objectkeys`), then the store's own), then the
bucket (403 naming it), then the client's prefix (403); nothing is signed before all pass.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel

from notifier import objectkeys
from notifier.errors import NotAllowed, Refused, Unavailable
from notifier.providers.base import UploadAsk, UploadStore
from notifier.settings import ApiClient


def _check_keys(request: UploadAsk) -> UploadAsk:
    """Refuse a key or prefix that is not a path of plain segments (422 naming it); the request
    with its prefix as it is signed (ending in "/")."""
    if request.key is not None and request.key_prefix is not None:
        raise Refused("key_prefix", "give key or key_prefix, not both")
    for field, value in (("key", request.key), ("key_prefix", request.key_prefix)):
        why = None if value is None else objectkeys.fault(value, prefix=field == "key_prefix")
        if why is not None:
            raise Refused(field, why)
    if request.key_prefix is None:
        return request
    signed: UploadAsk = request.model_copy(
        update={"key_prefix": objectkeys.folder(request.key_prefix)}
    )
    return signed


def _confine(request: UploadAsk, prefix: str | None, client: str) -> UploadAsk:
    """Keep a client with a key prefix of its own under it, segment by segment; a request
    without a key gets the prefix."""
    if prefix is None:
        return request
    asked = request.key if request.key is not None else request.key_prefix
    if asked is None:
        confined: UploadAsk = request.model_copy(update={"key_prefix": objectkeys.folder(prefix)})
        return confined
    if not objectkeys.within(asked, prefix, is_prefix=request.key is None):
        raise NotAllowed(
            f"client {client!r} may only upload keys under {objectkeys.folder(prefix)!r}"
        )
    return request


def mint_upload(
    body: BaseModel, *, client: ApiClient, store: UploadStore, require_https: bool
) -> BaseModel:
    """Check the request, then the client's buckets and prefix in ``store``, and mint it.

    422 naming the field at fault; then 403 for a bucket or key the client may not use, before
    anything is signed; 503 when the store's settings are missing.
    """
    request = _check_keys(cast(UploadAsk, body))  # a store.request, which has UploadAsk's fields
    store.check(request, require_https=require_https)
    if request.bucket not in client.upload_buckets(store.name):
        raise NotAllowed(f"client {client.client!r} may not upload to bucket {request.bucket!r}")
    request = _confine(request, client.upload_prefix(store.name), client.client)
    missing = store.missing()
    if missing is not None:
        raise Unavailable(f"{store.title} uploads are not configured: set {missing}")
    return store.mint(request)
