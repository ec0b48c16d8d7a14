"""The API described: ``/openapi.json``, and ``/docs`` for people (assets served here)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, send_file
from prometheus_client import CONTENT_TYPE_LATEST

from notifier.api.openapi import document
from notifier.metrics import exposition
from notifier.runtime import runtime

bp = Blueprint("meta", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document."""
    return jsonify(document())


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (text format 0.0.4)."""
    return Response(exposition(runtime().metrics), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/docs")
def docs() -> Response:
    """A page that renders the OpenAPI document, with no asset from elsewhere."""
    return send_file(STATIC / "docs.html", mimetype="text/html", max_age=300)


@bp.get("/docs/docs.js")
def docs_script() -> Response:
    """The page's script."""
    return send_file(STATIC / "docs.js", mimetype="text/javascript", max_age=300)
