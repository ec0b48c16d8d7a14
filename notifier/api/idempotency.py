"""``Idempotency-Key`` on the sending routes: the same key and body within 24 h answer the
first answer again, and send nothing more.

Per client, a key's slot ``notifier:idem:{client}:{sha256(key)}`` holds the fingerprint of the
first request (method, path and canonical JSON body) and, once it succeeded, its answer. A
request that finds the slot taken by one still running waits for it, so concurrent retries with
one key make one notification. A request that failed (4xx, 5xx) frees the slot: the caller may
try again with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import ParamSpec

from flask import Response, g, request
from redis import Redis
from redis.commands.core import Script

from notifier.errors import Conflict, FieldError, Unprocessable
from notifier.runtime import runtime

P = ParamSpec("P")
HEADER = "Idempotency-Key"
KEEP = 24 * 3600
# A slot whose first request died mid-way frees itself after this many seconds.
PENDING = 30
WAIT = 10.0

# KEYS: slot. ARGV: fingerprint, pending seconds.
_RESERVE = """
local fingerprint = redis.call('HGET', KEYS[1], 'fingerprint')
if not fingerprint then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'new'}
end
if fingerprint ~= ARGV[1] then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'done' then return {'pending'} end
return {'done', redis.call('HGET', KEYS[1], 'status'), redis.call('HGET', KEYS[1], 'body'),
        redis.call('HGET', KEYS[1], 'location')}
"""


@functools.cache
def _reserve_script(redis: Redis) -> Script:
    return redis.register_script(_RESERVE)


def _valid_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise Unprocessable(
            f"{HEADER} is not valid",
            errors=[FieldError(("header", HEADER), "1 to 255 printable ASCII characters")],
        )
    return key


def _fingerprint() -> str:
    raw = request.get_data()
    try:
        # The same JSON however it is spaced or ordered is the same body.
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(
        b"%s %s\n%s" % (request.method.encode(), request.path.encode(), canonical)
    ).hexdigest()


def _replay(status: str, body: str, location: str) -> Response:
    response = Response(body, status=int(status), mimetype="application/json")
    if location:
        response.headers["Location"] = location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[P, Response]) -> Callable[P, Response]:
    """Honour ``Idempotency-Key`` on a view that runs after authentication (``g.client``)."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        redis = runtime().redis
        slot = f"notifier:idem:{g.client.client}:{hashlib.sha256(_valid_key(key).encode()).hexdigest()}"
        reserve = _reserve_script(redis)
        fingerprint = _fingerprint()
        deadline = time.monotonic() + WAIT
        while True:
            state, *stored = reserve(keys=[slot], args=[fingerprint, PENDING])
            if state == "new":
                break
            if state == "conflict":
                raise Conflict(f"{HEADER} was used before with a different request")
            if state == "done":
                return _replay(*stored)
            if time.monotonic() > deadline:
                raise Conflict(f"a request with this {HEADER} is still being handled; retry later")
            time.sleep(0.02)  # the first request with this key is running: wait for its answer
        try:
            response = view(*args, **kwargs)
        except BaseException:
            redis.delete(slot)
            raise
        if 200 <= response.status_code < 300:
            redis.hset(
                slot,
                mapping={
                    "state": "done",
                    "status": response.status_code,
                    "body": response.get_data(as_text=True),
                    "location": response.headers.get("Location", ""),
                },
            )
            redis.expire(slot, KEEP)
        else:
            redis.delete(slot)
        return response

    return guarded
