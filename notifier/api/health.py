"""Liveness and readiness, without a key."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app, jsonify

from notifier.api.openapi import operation
from notifier.api.problems import problem
from notifier.redisconn import refusal
from notifier.runtime import runtime
from notifier.schemas import Health

bp = Blueprint("health", __name__)
# What /readyz writes to prove Redis takes writes; it expires by itself.
PROBE = "notifier:readyz"


@bp.get("/healthz")
@operation((200, Health))
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
@operation((200, Health), errors=(503,))
def readyz() -> Response:
    """Redis takes a write and the broker answers."""
    causes = unready()
    if causes:
        return problem(503, "Service Unavailable", "; ".join(causes))
    return jsonify(status="ready")


def unready() -> list[str]:
    """What keeps this process from taking work: none when Redis takes a write and the broker
    answers."""
    rt = runtime()
    unreachable, causes = [], []
    try:
        # A write, not a PING: a Redis that answers but refuses writes (full, a replica, a disk
        # it cannot save to) accepts nothing either.
        rt.redis.set(PROBE, "1", px=10_000)
    except redis.RedisError as e:
        refused = refusal(e)
        if refused is not None:
            causes.append(str(refused))
        else:
            unreachable.append("redis")
            if rt.broker_is_state:
                unreachable.append("broker")
    if not rt.broker_is_state:
        # Another broker: a connection of its own proves it answers (one a probe).
        try:
            with current_app.extensions["celery"].connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        except Exception:
            unreachable.append("broker")
    if unreachable:
        causes.append(f"not reachable: {', '.join(unreachable)}")
    return causes
