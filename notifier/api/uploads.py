"""``POST /v1/uploads/<store>/token``: an upload token or a browser form for one of the client's
buckets in any registered store; synchronous, since minting one is pure computation. One route
and one path for every store (``services/uploads.py``); the document lists it once a store, each
with that store's body and answer (``stores``)."""

from __future__ import annotations

from typing import get_type_hints

from flask import Blueprint, Flask, Response, g, jsonify
from pydantic import BaseModel

from notifier.api.auth import requires
from notifier.api.body import parse
from notifier.api.openapi import Variant, operation
from notifier.errors import NotFound
from notifier.runtime import Runtime, runtime
from notifier.schemas import S3UploadForm, S3UploadRequest
from notifier.services.uploads import mint_upload
from notifier.settings import Environment

bp = Blueprint("uploads", __name__)


def stores(app: Flask) -> dict[str, Variant]:
    """Each store of ``app`` as the document lists it: its title, its body and its answer (what
    its ``mint`` returns)."""
    rt: Runtime = app.extensions["notifier"]
    found: dict[str, Variant] = {}
    for name, store in rt.uploads.items():
        answer: type[BaseModel] = get_type_hints(store.mint)["return"]
        found[name] = Variant(title=store.title, body=store.request, ok=answer)
    return found


@bp.post("/uploads/<store>/token")
@operation((200, S3UploadForm), body=S3UploadRequest, errors=(503,), each=("store", stores))
@requires("upload")
def store_token(store: str) -> Response:
    """Mint an upload token or a browser form for one of the client's buckets."""
    rt = runtime()
    found = rt.uploads.get(store)
    if found is None:
        raise NotFound(f"no upload store {store!r} (known: {', '.join(sorted(rt.uploads))})")
    answer = mint_upload(
        parse(found.request), client=g.client, store=found,
        require_https=rt.settings.env is Environment.PRODUCTION,
    )  # fmt: skip
    return jsonify(answer.model_dump())
