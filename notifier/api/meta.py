"""The API described: ``/openapi.json``, ``/docs`` (Swagger UI, served from here), ``/metrics``.

Swagger UI 5 (it renders OpenAPI 3.1) comes from the ``flask-openapi3-swagger`` package, which
ships its built assets; they are served by this app, so the page needs nothing from elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import mimetypes
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

from notifier.api.openapi import document, operation
from notifier.metrics import exposition
from notifier.runtime import runtime

bp = Blueprint("meta", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


def _swagger_ui() -> Path:
    # Found without importing the package, which would import a framework we do not use.
    spec = importlib.util.find_spec("flask_openapi3_swagger")
    if spec is None or spec.origin is None:
        raise RuntimeError("flask-openapi3-swagger is not installed")
    return Path(spec.origin).parent / "templates" / "swagger"


SWAGGER_UI = _swagger_ui()


@bp.get("/openapi.json")
@operation((200, "application/json"))
def openapi() -> Response:
    """This document (OpenAPI 3.1), generated from the routes and their pydantic models."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return Response(json.dumps(document(app)), mimetype="application/json")


@bp.get("/metrics")
@operation((200, "text/plain"))
def metrics() -> Response:
    """Prometheus metrics, in the text format."""
    # As content_type, not mimetype: Flask would add a second "charset=utf-8" to a text/* one,
    # which Prometheus cannot parse as a media type (it logs it and falls back on every scrape).
    rt = runtime()
    return Response(exposition(rt.metrics, rt.guard_metrics), content_type=CONTENT_TYPE_LATEST)


@bp.get("/docs")
@operation((200, "text/html"))
def docs() -> Response:
    """This document, for people: Swagger UI, with nothing loaded from elsewhere."""
    return _file(STATIC, "docs.html")


@bp.get("/docs/docs.js")
def docs_script() -> Response:
    """The script that starts Swagger UI on the page."""
    return _file(STATIC, "docs.js")


@bp.get("/docs/swagger/<path:name>")
def docs_asset(name: str) -> Response:
    """Swagger UI's own files, from the installed package."""
    return _file(SWAGGER_UI, name)


@cache
def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _file(folder: Path, name: str) -> Response:
    path = safe_join(str(folder), name)
    if path is None or not Path(path).is_file():
        raise NotFound()
    mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    response = Response(_read(path), mimetype=mimetype)
    response.cache_control.max_age = 300
    return response
