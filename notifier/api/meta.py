"""The API described: ``/openapi.json``, and ``/docs`` for people (assets served here)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from notifier.api.openapi import document
from notifier.metrics import exposition
from notifier.runtime import runtime

bp = Blueprint("meta", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document, in the order it was written (the /v1 routes first)."""
    return Response(json.dumps(document()), mimetype="application/json")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (text format 0.0.4)."""
    return Response(exposition(runtime().metrics), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/docs")
def docs() -> Response:
    """A page that renders the OpenAPI document, with no asset from elsewhere."""
    return _static("docs.html", "text/html")


@bp.get("/docs/docs.js")
def docs_script() -> Response:
    """The page's script."""
    return _static("docs.js", "text/javascript")


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _static(name: str, mimetype: str) -> Response:
    response = Response(_asset(name), mimetype=mimetype)
    response.cache_control.max_age = 300
    return response
