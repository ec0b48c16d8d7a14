"""``Idempotency-Key`` on the sending routes: the same key and body within 24 h answer the
first answer again, and send nothing more.

The first request's fingerprint (method, path and canonical JSON body) and answer are kept by
``notifier.stores.idempotency``. A request that finds the slot taken by one still running waits for it, so concurrent retries with
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

from notifier.api.openapi import tag
from notifier.errors import Conflict, FieldError, Unprocessable
from notifier.runtime import runtime
from notifier.stores.idempotency import Answer

P = ParamSpec("P")
HEADER = "Idempotency-Key"
# How long a request waits for another one with the same key to answer.
WAIT = 10.0


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
    except (ValueError, RecursionError):  # parse() says why it is not JSON
        canonical = raw
    return hashlib.sha256(
        b"%s %s\n%s" % (request.method.encode(), request.path.encode(), canonical)
    ).hexdigest()


def _replay(answer: Answer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    if answer.location:
        response.headers["Location"] = answer.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[P, Response]) -> Callable[P, Response]:
    """Honour ``Idempotency-Key`` on a view that runs after authentication (``g.client``)."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        keys = runtime().idempotency
        slot = keys.slot(g.client.client, _valid_key(key))
        fingerprint = _fingerprint()
        deadline = time.monotonic() + WAIT
        while (state := keys.reserve(slot, fingerprint)) != "new":
            if isinstance(state, Answer):
                return _replay(state)
            if state == "conflict":
                raise Conflict(f"{HEADER} was used before with a different request")
            if time.monotonic() > deadline:
                raise Conflict(f"a request with this {HEADER} is still being handled; retry later")
            time.sleep(0.02)  # the first request with this key is running: wait for its answer
        try:
            response = view(*args, **kwargs)
        except BaseException:
            keys.free(slot)
            raise
        if 200 <= response.status_code < 300:
            location = response.headers.get("Location", "")
            keys.keep(slot, Answer(response.status_code, response.get_data(as_text=True), location))
        else:
            keys.free(slot)
        return response

    tag(guarded, idempotent=True, errors=(409,))
    return guarded
