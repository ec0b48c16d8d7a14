"""Liveness and readiness, without a key."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from notifier.api.openapi import operation
from notifier.api.problems import problem
from notifier.runtime import runtime
from notifier.schemas import Health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation((200, Health))
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
@operation((200, Health), errors=(503,))
def readyz() -> Response:
    """Redis and the broker answer."""
    rt = runtime()
    failed = []
    try:
        rt.redis.ping()
    except Exception:
        failed.append("redis")
        if rt.broker_is_state:
            failed.append("broker")
    if not rt.broker_is_state:
        # Another broker: a connection of its own proves it answers (one a probe).
        try:
            with current_app.extensions["celery"].connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        except Exception:
            failed.append("broker")
    if failed:
        return problem(503, "Service Unavailable", f"not reachable: {', '.join(failed)}")
    return jsonify(status="ready")
