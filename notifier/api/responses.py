"""Answers and look-ups more than one route shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from flask import Response, g, jsonify
from pydantic import BaseModel

from notifier.api.auth import rate_limited, requires
from notifier.api.idempotency import Replay, Sending, idempotent
from notifier.api.openapi import MAX_PATH_ID, operation
from notifier.errors import Forbidden, NotFound
from notifier.runtime import runtime
from notifier.schemas import Accepted, Notification
from notifier.settings import Scope

View = Callable[[], Response]
P = ParamSpec("P")
R = TypeVar("R")


class Owned(Protocol):
    client: str


Found = TypeVar("Found", bound=Owned)


def sending(
    scope: Scope,
    body: type[BaseModel],
    answer: type[BaseModel] = Accepted,
    replay: Replay | None = None,
    *,
    guarded: bool = False,
) -> Callable[[Sending], View]:
    """The shape of every route that accepts something to send: a 202 of ``answer`` to a
    ``body``, for a client with ``scope``, with ``Idempotency-Key`` (and, ``guarded``, whose
    mail the bounce-rate guard has not paused), through its rate limit.

    The view, given the Idempotency-Key's note (None without a key), parses the body, stores
    and queues what it asks for in one step, telling the note, and answers
    :func:`accepted`. The guards run first, in this order: the scope; the key, whose
    ``replay`` gives the answer again for what an earlier request with it stored (by default:
    a stored notification's), before the pause: a mail accepted before its client's pause is
    still sent, so a retry of its request answers that 202 again, not a 403 saying it was not
    taken; the pause; the rate limit, last, so that neither a replay nor a paused client's
    refused mail spends what the client's other sends (its codes) need.
    """

    def decorate(view: Sending) -> View:
        limited = rate_limited(view)
        kept = idempotent(replay or stored_notification())(
            unpaused(limited) if guarded else limited
        )
        return operation((202, answer), body=body)(requires(scope)(kept))

    return decorate


def unpaused(view: Callable[P, R]) -> Callable[P, R]:
    """Let a mail route run only for a client (``g.client``) whose mail the bounce-rate guard
    has not paused; 403 naming the rate otherwise."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        client = g.client.client
        pause = runtime().guard.paused(client)
        if pause is not None:
            setting = f"NOTIFIER_{pause.kind.upper()}_RATE_PAUSE"
            raise Forbidden(
                f"the mail of client {client!r} is paused: its {pause.kind} rate over 24 h "
                f"reached {pause.rate:.1%} ({pause.count} of {pause.volume} mails), at or past "
                f"{setting}; an operator resumes it with `notifier clients resume {client}`"
            )
        return view(*args, **kwargs)

    return guarded


def stored_notification(
    answer: type[Accepted] = Accepted, extra: Callable[[], dict[str, int]] = dict
) -> Replay:
    """The replay of a route that answers :func:`accepted` for one notification."""

    def replay(found_id: str, status: str) -> Response | None:
        if runtime().store.get(found_id) is None:
            return None
        return _accepted(found_id, status, answer, extra())

    return replay


def accepted(record: Notification, answer: type[Accepted] = Accepted, **extra: int) -> Response:
    """The 202 answer to a send, with the status route in ``links`` and ``Location``."""
    return _accepted(record.id, record.status, answer, extra)


def _accepted(
    found_id: str, status: str, answer: type[Accepted], extra: dict[str, int]
) -> Response:
    fields = {"id": found_id, "status": status, **extra}
    return accepted_at(f"/v1/notifications/{found_id}", answer, fields)


def accepted_at(link: str, answer: type[BaseModel], fields: dict[str, Any]) -> Response:
    """A 202 answer whose status route is ``link`` (in ``links`` and ``Location``)."""
    body = answer.model_validate({**fields, "links": {"self": link}})
    response = jsonify(body.model_dump())
    response.status_code = 202
    response.headers["Location"] = link
    return response


def own(find: Callable[[str], Found | None], what: str, found_id: str) -> Found:
    """What ``find`` finds by ``found_id`` if it is the calling client's; 404 otherwise.

    Another client's is as unknown as one that never was, and an id longer than any we make is
    unknown without asking Redis.
    """
    found = find(found_id) if len(found_id) <= MAX_PATH_ID else None
    if found is None or found.client != g.client.client:
        raise NotFound(f"no {what} {found_id!r}")
    return found
