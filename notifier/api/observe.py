"""Every request: a request id, a metrics sample, one access-log line."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from notifier.logs import new_request_id, request_id
from notifier.metrics import LATENCY, REQUESTS

log = logging.getLogger("notifier.access")


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _start() -> None:
    g.started = time.perf_counter()
    g.request_id_token = request_id.set(new_request_id(request.headers.get("X-Request-Id")))


def _finish(response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule else "unmatched"
    took = time.perf_counter() - g.get("started", time.perf_counter())
    # Any caller may send any method: one outside HTTP's own is "other", or each made-up
    # one (XYZZY, PURGE) would be a series of its own, in every web process.
    method = request.method if request.method in METHODS else "other"
    REQUESTS.labels(route, method, str(response.status_code)).inc()
    LATENCY.labels(route, method).observe(took)
    response.headers["X-Request-Id"] = request_id.get() or ""
    log.info(
        "%s %s %s",
        request.method,
        route,
        response.status_code,
        extra={
            "status": response.status_code,
            "duration_ms": round(took * 1000, 2),
            # A test key's requests are told apart from live traffic in the logs.
            **({"mode": "test"} if getattr(g.get("client"), "mode", None) == "test" else {}),
        },
    )
    return response


def _reset(exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)


def register(app: Flask) -> None:
    """Install the hooks on ``app``."""
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_reset)
