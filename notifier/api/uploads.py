"""``POST /v1/uploads/qiniu/token``: synchronous, since minting a token is pure computation."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from config import Environment
from notifier.api.auth import requires
from notifier.api.body import parse
from notifier.api.openapi import operation
from notifier.runtime import runtime
from notifier.schemas import UploadToken, UploadTokenRequest
from notifier.services.uploads import mint_upload_token

bp = Blueprint("uploads", __name__)


@bp.post("/uploads/qiniu/token")
@operation((200, UploadToken), body=UploadTokenRequest, errors=(503,))
@requires("upload")
def qiniu_token() -> Response:
    """Mint a Qiniu upload token for one of the client's buckets."""
    rt = runtime()
    answer = mint_upload_token(
        parse(UploadTokenRequest),
        client=g.client,
        tokens=rt.qiniu,
        upload_url=rt.settings.qiniu_upload_url,
        require_https=rt.settings.env is Environment.PRODUCTION,
    )
    return jsonify(answer.model_dump())
