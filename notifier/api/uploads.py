"""``POST /v1/uploads/qiniu/token`` and ``POST /v1/uploads/s3/token``: synchronous, since minting
a token or a form is pure computation. One path for every store (``services/uploads.py``)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from notifier.api.auth import requires
from notifier.api.body import parse
from notifier.api.openapi import operation
from notifier.runtime import runtime
from notifier.schemas import S3UploadForm, S3UploadRequest, UploadToken, UploadTokenRequest
from notifier.services.uploads import mint_upload
from notifier.settings import Environment

bp = Blueprint("uploads", __name__)


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


def _mint(name: str) -> Response:
    rt = runtime()
    store = rt.uploads[name]
    answer = mint_upload(
        parse(store.request), client=g.client, store=store,
        require_https=rt.settings.env is Environment.PRODUCTION,
    )  # fmt: skip
    return jsonify(answer.model_dump())
