"""A change the API accepts is held by enough Redis replicas before it is answered.

After every request that may change state (any method but GET, HEAD and OPTIONS) and succeeded,
the web waits for ``NOTIFIER_REDIS_MIN_REPLICAS`` replicas to hold everything written so far
(``notifier.redisconn.Replication``). When they do not in time, or the primary changed during the
request, the answer is 503 instead: nothing is promised, and the same request with the same
``Idempotency-Key`` is safe to repeat.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, g, request

from notifier.api.problems import problem
from notifier.redisconn import primary_moves
from notifier.runtime import runtime

log = logging.getLogger(__name__)
READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def _note_primary() -> None:
    g.primary_moves = primary_moves(runtime().redis)


def _confirm(response: Response) -> Response:
    rt = runtime()
    if request.method in READ_ONLY or not 200 <= response.status_code < 300:
        return response
    try:
        rt.replication.confirm(rt.redis, g.get("primary_moves", 0))
    except redis.RedisError as e:
        log.warning("answered 503: the change is not held by enough replicas: %s", e)
        return problem(
            503,
            "Service Unavailable",
            "the change is not yet held by enough Redis replicas; retry (with the same "
            "Idempotency-Key, if you sent one)",
            headers={"Retry-After": "1"},
        )
    return response


def register(app: Flask) -> None:
    """Confirm each accepted change before it is answered."""
    app.before_request(_note_primary)
    app.after_request(_confirm)
