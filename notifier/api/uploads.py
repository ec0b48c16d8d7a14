"""``POST /v1/uploads/<store>/token``: an upload token or a browser form for one of the client's
buckets in any registered store; synchronous, since minting one is pure computation. One path
for every store (``services/uploads.py``).

Qiniu (a token) and S3 keep routes of their own, so that the document states each one's body;
every other store (Aliyun OSS, and any store registered after it) answers the S3 route's form
(``{"url", "fields", "bucket", "key", "expires_at"}``) to the S3 route's body at its name.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from notifier.api.auth import requires
from notifier.api.body import parse
from notifier.api.openapi import operation
from notifier.errors import NotFound
from notifier.providers.registry import UPLOAD_STORES
from notifier.runtime import runtime
from notifier.schemas import S3UploadForm, S3UploadRequest, UploadToken, UploadTokenRequest
from notifier.services.uploads import mint_upload
from notifier.settings import Environment

bp = Blueprint("uploads", __name__)
# The stores with a route of their own (its URL matched before the one for any store).
OWN_ROUTES = ("qiniu", "s3")
STORE = {
    "type": "string",
    "description": (
        "The store: qiniu and s3 have paths of their own, with their own bodies. oss: a bucket"
        " of lower-case letters, digits and hyphens (no dots), a key of at most 1023 bytes"
    ),
    "enum": [name for name in UPLOAD_STORES if name not in OWN_ROUTES],
}


@bp.post("/uploads/qiniu/token")
@operation((200, UploadToken), body=UploadTokenRequest, errors=(503,))
@requires("upload")
def qiniu_token() -> Response:
    """Mint a Qiniu upload token for one of the client's buckets."""
    return _mint("qiniu")


@bp.post("/uploads/s3/token")
@operation((200, S3UploadForm), body=S3UploadRequest, errors=(503,))
@requires("upload")
def s3_token() -> Response:
    """Make an S3 browser upload form (a presigned POST) for one of the client's buckets."""
    return _mint("s3")


@bp.post("/uploads/<store>/token")
@operation((200, S3UploadForm), body=S3UploadRequest, errors=(404, 503), path={"store": STORE})
@requires("upload")
def store_token(store: str) -> Response:
    """Make a browser upload form for one of the client's buckets in a store (OSS and others)."""
    return _mint(store)


def _mint(name: str) -> Response:
    rt = runtime()
    store = rt.uploads.get(name)
    if store is None:
        raise NotFound(f"no upload store {name!r} (known: {', '.join(sorted(rt.uploads))})")
    answer = mint_upload(
        parse(store.request), client=g.client, store=store,
        require_https=rt.settings.env is Environment.PRODUCTION,
    )  # fmt: skip
    return jsonify(answer.model_dump())
