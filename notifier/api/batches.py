"""``POST /v1/mail/batch``, ``POST /v1/sms/batch`` and ``/v1/batches/<id>``: a batch of mails or
SMS, its progress, its rows, its cancel.

A client sees only its own batches, of either kind. A batch is one request to the rate limit; its rows count
against the client's allowance of rows in unfinished batches (``NOTIFIER_BATCH_MAX_PENDING``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, get_args

from flask import Blueprint, Response, g, jsonify, request

from notifier.api.auth import requires
from notifier.api.body import parse
from notifier.api.openapi import operation
from notifier.api.responses import accepted_at, own, sending
from notifier.api.sms import sms_options
from notifier.errors import Conflict, FieldError, NotFound, Unprocessable
from notifier.queueing import Note
from notifier.runtime import runtime
from notifier.schemas import (
    Batch,
    BatchAccepted,
    BatchPage,
    BatchRequest,
    SmsBatchRequest,
    Status,
)
from notifier.services.batches import accept_batch, cancel_batch
from notifier.services.sms import accept_sms_batch

bp = Blueprint("batches", __name__)
P = ParamSpec("P")
R = TypeVar("R")
PAGE = 100  # items in a page
SCAN = 2000  # rows one page request looks at, at most: a page may come back short
STATUSES = get_args(Status)


def larger_body(view: Callable[P, R]) -> Callable[P, R]:
    """Let this route's body be up to ``NOTIFIER_BATCH_MAX_BODY_SIZE`` (before anything reads
    it, as the idempotency check does)."""

    @functools.wraps(view)
    def allowed(*args: P.args, **kwargs: P.kwargs) -> R:
        request.max_content_length = runtime().settings.batch_max_body_size
        return view(*args, **kwargs)

    return allowed


def _own(batch_id: str) -> Batch:
    return own(runtime().batches.get, "batch", batch_id)


def _accepted(batch_id: str, status: str, total: int) -> Response:
    fields = {"id": batch_id, "status": status, "total": total}
    return accepted_at(f"/v1/batches/{batch_id}", BatchAccepted, fields)


def _replay(batch_id: str, status: str) -> Response | None:
    batch = runtime().batches.get(batch_id)
    return None if batch is None else _accepted(batch_id, status, batch.total)


@bp.post("/mail/batch")
@larger_body
@sending("mail", BatchRequest, BatchAccepted, _replay, guarded=True)
def send_batch(note: Note | None) -> Response:
    """Send one mail to each of up to 10,000 recipients (now, or at send_at)."""
    rt = runtime()
    client = g.client
    batch = accept_batch(
        parse(BatchRequest),
        client=client.client,
        test=client.mode == "test",
        sender=rt.mail_sender,
        templates=rt.templates,
        **_stored(note),
    )
    return _accepted(batch.id, batch.status, batch.total)


@bp.post("/sms/batch")
@larger_body
@sending("sms", SmsBatchRequest, BatchAccepted, _replay)
def send_sms_batch(note: Note | None) -> Response:
    """Send a named SMS to each of up to 10,000 recipients (now, or at send_at)."""
    batch = accept_sms_batch(
        parse(SmsBatchRequest), notifications=runtime().store, **_stored(note), **sms_options()
    )
    return _accepted(batch.id, batch.status, batch.total)


def _stored(note: Note | None) -> dict[str, Any]:
    """Where a batch of either kind is kept and queued, and the client's allowance of rows."""
    rt = runtime()
    return {
        "store": rt.batches,
        "queue": rt.fan_out_queue,
        "max_pending": rt.settings.batch_max_pending,
        "callback": g.client.callback_url is not None,
        "note": note,
    }


@bp.get("/batches/<id>")
@operation((200, Batch), errors=(404, 503))
@requires()
def show(id: str) -> Response:
    """A batch's progress: its status and the count of its rows in each status."""
    return jsonify(_own(id).model_dump())


@bp.get("/batches/<id>/notifications")
@operation(
    (200, BatchPage),
    errors=(404, 422, 503),
    query=(
        {"name": "status", "schema": {"enum": list(STATUSES)}},
        {"name": "cursor", "schema": {"type": "string", "pattern": "^[0-9]{1,5}$"}},
    ),
)
@requires()
def notifications(id: str) -> Response:
    """A page of a batch's notifications (of one status, if given); next is the next page."""
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise Unprocessable(
            "status is not a status",
            errors=[FieldError(("query", "status"), f"one of {', '.join(STATUSES)}")],
        )
    cursor = request.args.get("cursor", "0")
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 5):
        raise Unprocessable(
            "cursor is not one this route gave",
            errors=[FieldError(("query", "cursor"), "the next of an earlier page")],
        )
    batch = _own(id)
    items, following = runtime().batches.page(
        batch, status=status, start=int(cursor), limit=PAGE, scan=SCAN
    )
    page = BatchPage(items=items, next=None if following is None else str(following))
    return jsonify(page.model_dump())


@bp.delete("/batches/<id>")
@operation((200, Batch), errors=(404, 409, 503))
@requires()
def cancel(id: str) -> Response:
    """Cancel what of a batch has not gone out (409 once every row is done)."""
    rt = runtime()
    _own(id)
    outcome, batch = cancel_batch(id, store=rt.batches, notifications=rt.store)
    if outcome == "missing":
        raise NotFound(f"no batch {id!r}")  # expired since it was looked up
    if outcome == "done" or batch is None:
        raise Conflict("the batch is done: nothing is left to cancel")
    return jsonify(batch.model_dump())
