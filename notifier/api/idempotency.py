"""``Idempotency-Key`` on the sending routes: the same key and body within 24 h answer the
first answer again, and send nothing more.

The first request's fingerprint (method, path and canonical JSON body) and answer are kept by
``notifier.stores.idempotency``. A request that finds the slot taken by one still running waits
for it, so concurrent retries with one key make one notification. A request that failed (4xx,
5xx) frees the slot: the caller may try again with the same key.

The first request notes in the slot the id it stores (the ``note`` its view is given, which
``queueing.Intake`` tells): just
before the store when the task's message goes in the store's transaction, just after the publish
when it is published after (a failed publish takes the record back). A retry that finds the slot
pending with an id whose record exists answers from the record (the route's ``replay``): the
first request stored it and died before its answer was kept, or is about to keep the same
answer. Without that, the retry would wait the slot out and send a second time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable

from flask import Response, g, request
from redis import RedisError

from notifier.api.body import strict_json
from notifier.api.openapi import tag
from notifier.errors import BadRequest, Conflict, FieldError, Unprocessable
from notifier.queueing import LOOK_WITHIN, Note
from notifier.redisconn import described
from notifier.runtime import runtime
from notifier.stores.idempotency import PENDING, Answer, IdempotencyKeys, Pending

# What a route answers for an id it stored (with the status its answer gave), or None when no
# such record is stored.
Replay = Callable[[str, str], Response | None]
HEADER = "Idempotency-Key"
# How long a request waits for another one with the same key to answer.
WAIT = 10.0
# A sending view: given the note to tell the id it stores (None without a key), it answers.
Sending = Callable[[Note | None], Response]

log = logging.getLogger(__name__)


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
        # The same JSON however it is spaced or ordered is the same body: read as parse() reads
        # it (a repeated key is no body of ours, not one whose last value counts).
        canonical = json.dumps(strict_json(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError, BadRequest):  # parse() says why it is not JSON
        canonical = raw
    return hashlib.sha256(
        b"%s %s\n%s" % (request.method.encode(), request.path.encode(), canonical)
    ).hexdigest()


def _answer(response: Response) -> Answer:
    location = response.headers.get("Location", "")
    return Answer(response.status_code, response.get_data(as_text=True), location)


def _replayed(answer: Answer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    if answer.location:
        response.headers["Location"] = answer.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _stored_anyway(
    keys: IdempotencyKeys, slot: str, fingerprint: str, replay: Replay
) -> Response | None:
    """After the view failed: its answer when what it noted was stored after all (the intake
    looks too, but may not have been able to tell), kept for the key. None when nothing was
    (the key freed, unless another request holds it now), or when Redis cannot tell: then the
    slot stays pending, and a retry with the key answers from the record once it can (or, the
    record never coming, anew after PENDING)."""
    try:
        state = keys.reserve(slot, fingerprint)
        if isinstance(state, Pending) and state.id:
            stored = replay(state.id, state.status)
            if stored is not None:
                try:
                    keys.keep(slot, _answer(stored))
                except RedisError as e:  # accepted all the same, as below
                    log.warning("the answer to %s was not kept: %s", HEADER, described(e))
                return stored
        if isinstance(state, Pending) or state == "new":
            keys.free(slot)  # ours, and nothing stored
    except RedisError as e:
        log.warning("whether a request with %s was stored cannot be told: %s", HEADER, described(e))
    return None


def idempotent(replay: Replay) -> Callable[[Sending], Callable[[], Response]]:
    """Honour ``Idempotency-Key`` on a view that runs after authentication (``g.client``) and
    stores what it sends through ``queueing.Intake``, with the note it is given; ``replay``
    answers for what it stored."""

    def decorate(view: Sending) -> Callable[[], Response]:
        @functools.wraps(view)
        def guarded() -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return view(None)
            keys = runtime().idempotency
            slot = keys.slot(g.client.client, _valid_key(key))
            fingerprint = _fingerprint()
            deadline = time.monotonic() + WAIT
            dead = ""
            while (state := keys.reserve(slot, fingerprint, dead)) != "new":
                if isinstance(state, Answer):
                    return _replayed(state)
                if state == "conflict":
                    raise Conflict(f"{HEADER} was used before with a different request")
                if isinstance(state, Pending) and state.id:
                    stored = replay(state.id, state.status)
                    if stored is not None:  # it died after storing: its answer, kept from now
                        answer = _answer(stored)
                        keys.keep(slot, answer)
                        return _replayed(answer)
                    if state.age > PENDING:  # it died before storing: the key is free again
                        dead = state.id
                        continue
                if time.monotonic() > deadline:
                    # Retry-After tells it from a key reused with another body: asking again
                    # with the same key is the thing to do (the client library does).
                    raise Conflict(
                        f"a request with this {HEADER} is still being handled; retry later",
                        headers={"Retry-After": "1"},
                    )
                time.sleep(0.02)  # the first request with this key is running: wait for it
            started = time.monotonic()
            try:
                response = view(
                    lambda found_id, status: keys.note(slot, fingerprint, found_id, status)
                )
            except Exception as e:
                if isinstance(e, RedisError) and time.monotonic() - started >= LOOK_WITHIN:
                    # Slow (a Redis that hangs): the key stays pending, a retry with it answers
                    # from the record if there is one, or anew after PENDING. (Another slow
                    # failure, a broker's, leaves Redis to answer the look.)
                    raise
                stored = _stored_anyway(keys, slot, fingerprint, replay)
                if stored is None:
                    raise
                return stored
            except BaseException:
                # Cut off (a worker's graceful timeout throws GreenletExit into the handler): the
                # record may be stored already, so the key stays pending, as after a SIGKILL; a
                # retry with it answers from the record, or anew once PENDING has passed.
                raise
            if 200 <= response.status_code < 300:
                try:
                    keys.keep(slot, _answer(response))
                except RedisError as e:
                    # Accepted all the same (a 503 now would have the client send it again):
                    # the key's slot still holds the id the note gave it, so a retry with the
                    # key answers from the record, as after a request that died here.
                    log.warning("the answer to %s was not kept: %s", HEADER, described(e))
            else:
                keys.free(slot)
            return response

        tag(guarded, idempotent=True, errors=(409,))
        return guarded

    return decorate
