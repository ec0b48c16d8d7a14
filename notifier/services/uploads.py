"""Upload tokens and forms for browsers: check what a client may upload, then let the store's
adapter mint it. One path for every store (Qiniu, S3); an adapter
(:class:`~notifier.providers.base.UploadStore`) says what differs."""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel

from notifier.errors import Forbidden, ServiceUnavailable, Unprocessable
from notifier.providers.base import UploadAsk, UploadStore
from notifier.settings import ApiClient


def _confine(request: UploadAsk, prefix: str | None, client: str) -> UploadAsk:
    """Keep a client with a key prefix of its own under it; a request without a key gets it."""
    if prefix is None:
        return request
    asked = request.key if request.key is not None else request.key_prefix
    if asked is None:
        confined: UploadAsk = request.model_copy(update={"key_prefix": prefix})
        return confined
    if not asked.startswith(prefix):
        raise Forbidden(f"client {client!r} may only upload keys under {prefix!r}")
    return request


def mint_upload(
    body: BaseModel, *, client: ApiClient, store: UploadStore, require_https: bool
) -> BaseModel:
    """Check the request against the client's buckets and prefix in ``store``, and mint it.

    403 for a bucket or key the client may not use, before anything is signed; 422 naming the
    field at fault; 503 when the store's settings are missing.
    """
    request = cast(UploadAsk, body)  # a store.request, which has UploadAsk's fields
    if request.bucket not in store.buckets(client):
        raise Forbidden(f"client {client.client!r} may not upload to bucket {request.bucket!r}")
    request = _confine(request, store.key_prefix(client), client.client)
    if request.key is not None and request.key_prefix is not None:
        raise Unprocessable.field("key_prefix", "give key or key_prefix, not both")
    store.check(request, require_https=require_https)
    missing = store.missing()
    if missing is not None:
        raise ServiceUnavailable(f"{store.title} uploads are not configured: set {missing}")
    return store.mint(request)
