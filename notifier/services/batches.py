"""Batches: one request, up to 10,000 personal mails (or SMS: :mod:`notifier.services.sms`).

Accepting checks and renders every row, then stores the batch in one Redis transaction and
queues its fan-out (or schedules it): request time is one render per row and a few writes,
whatever the size. The fan-out runs in a worker on the ``batch`` lane and makes the rows into
notifications a chunk at a time, each chunk in one Redis step with its messages, on the
``bulk`` lane. A fan-out that dies half-way starts again where the last whole chunk ended.
Each row's mail is rendered again when it is sent, from the batch's content and the row's data,
so Redis holds a batch's content once and its rows' data, never 10,000 rendered mails.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from notifier.errors import Fault, Limited, PermanentProviderError, Refused
from notifier.queueing import Intake, Note, TaskQueue
from notifier.schemas import Batch, BatchRequest
from notifier.services.mail import compose
from notifier.stores.batches import CHUNK, BatchStore, Row, new_batch_id, row_id
from notifier.stores.notifications import NotificationStore
from notifier.templating import MailTemplates

R = TypeVar("R")
T = TypeVar("T")
log = logging.getLogger(__name__)
# A 422 names this many bad rows, and says how many more there are.
MAX_ROW_ERRORS = 100
YIELD_EVERY = 100  # rows checked between two turns for the web's other requests
# How long a client over its allowance of pending rows is told to wait.
PENDING_RETRY_AFTER = 60
# Chunks one fan-out run makes before it queues the next run: a run stays well within the task
# time limit, and batches fanned out at once take turns.
RUN_CHUNKS = 4
# Statuses a batch's cancel takes its rows out of (a retrying row's next attempt is not made).
CANCELLABLE = ("scheduled", "queued", "retrying")


def accept_batch(
    request: BatchRequest,
    *,
    client: str,
    sender: str,
    store: BatchStore,
    templates: MailTemplates,
    queue: TaskQueue,
    max_pending: int,
    callback: bool,
    test: bool = False,
    note: Note | None = None,
) -> Batch:
    """Check and render every row (422 naming each bad one), store the batch, and queue its
    fan-out, or schedule it for ``send_at``; ``note`` is told its id once it is accepted."""
    _check_rows(request, templates)
    content = {
        "client": client,
        "sender": sender, "template": request.template, "subject": request.subject,
        "text": request.text, "html": request.html,
    }  # fmt: skip
    return store_batch(
        Rows("mail", content, [(r.to, r.data, r.reference, {}) for r in request.recipients]),
        client=client, send_at=request.send_at, reference=request.reference, store=store,
        queue=queue, max_pending=max_pending, callback=callback, test=test, note=note,
    )  # fmt: skip


@dataclass(frozen=True)
class Rows:
    """A checked batch: its rows' kind (``mail``, ``sms``), what every row shares, and each
    row as (recipient, data, reference, fields its record has beside the common ones)."""

    kind: str
    content: dict[str, Any]
    rows: list[Row]


def store_batch(
    batch: Rows,
    *,
    client: str,
    send_at: datetime | None,
    reference: str | None,
    store: BatchStore,
    queue: TaskQueue,
    max_pending: int,
    callback: bool,
    test: bool,
    note: Note | None,
) -> Batch:
    """Take the rows from the client's allowance (429 past it), store the batch and queue its
    fan-out (or schedule it); the allowance is given back if it cannot be stored."""
    batch_id = new_batch_id()
    if not store.take_pending(client, batch_id, len(batch.rows), max_pending):
        raise Limited(
            PENDING_RETRY_AFTER,
            f"client {client!r} would have more than {max_pending} rows in unfinished batches",
        )
    when = send_at.timestamp() if send_at else None
    if when is not None and when <= time.time():
        when = None  # due already: send now
    new = NewBatch(store, batch_id, client, batch, when, reference, test, callback)
    try:
        stored = Intake(queue, note).take(batch_id, new, now=when is None)
    except Exception:
        store.give_back(client, batch_id)
        raise
    log.info("batch %s of %d rows accepted for %s", batch_id, len(batch.rows), client)
    return stored


@dataclass(frozen=True)
class NewBatch:
    """A batch a request stores: its record and rows, or, taken back, none."""

    store: BatchStore
    id: str
    client: str
    batch: Rows
    send_at: float | None
    reference: str | None
    test: bool
    callback: bool

    def write(self, push: tuple[str, str] | None) -> Batch:
        """Store the batch, with its fan-out's message ``push`` in the same transaction."""
        return self.store.create(
            batch_id=self.id,
            client=self.client,
            kind=self.batch.kind,
            content=self.batch.content,
            rows=self.batch.rows,
            send_at=self.send_at,
            reference=self.reference,
            test=self.test,
            callback=self.callback,
            push=push,
        )

    def take_back(self) -> bool:
        """Remove the batch; False when its fan-out has begun (kept)."""
        return self.store.discard(self.id)

    def stored(self) -> Batch | None:
        """The batch, if it is there."""
        return self.store.get(self.id)


def _check_rows(request: BatchRequest, templates: MailTemplates) -> None:
    """Render every row once (one row when every row has the same content); the rendered
    mails are not kept (10,000 of a large template took half a gigabyte)."""
    check_rows(
        request.recipients,
        lambda index, row: compose(
            template=request.template, data=row.data, subject=request.subject,
            text=request.text, html=request.html, templates=templates,
            row=("recipients", index),
        ),
        alike=request.template is None, keep=False,
    )  # fmt: skip


def check_rows(
    rows: Sequence[R], check: Callable[[int, R], T], *, alike: bool = False, keep: bool = True
) -> list[T]:
    """``check(index, row)`` of every row (of the first only when ``alike``: every row is the
    same), its results (none unless ``keep``): a fault of the whole batch at once, each bad
    row's by index (the first ``MAX_ROW_ERRORS`` named), all in one refusal.

    Rendering is CPU with no I/O: every :data:`YIELD_EVERY` rows the web's other requests
    (gevent's greenlets on the same worker: a login's code among them) get their turn, which
    10,000 rows of a large template held up for seconds."""
    faults: list[Fault] = []
    results: list[T] = []
    bad = 0
    for index, row in enumerate(rows[:1] if alike else rows):
        if index and index % YIELD_EVERY == 0:
            time.sleep(0)  # gevent's sleep(0) under the web: a turn for the others
        try:
            result = check(index, row)
            if keep:
                results.append(result)
        except Refused as e:
            if not any(len(f.field) > 1 and f.field[0] == "recipients" for f in e.faults):
                raise  # the batch's own content is at fault, not this row's
            bad += 1
            if len(faults) < MAX_ROW_ERRORS:
                faults += e.faults
    if bad:
        more = f" (the first {MAX_ROW_ERRORS} are named)" if bad > MAX_ROW_ERRORS else ""
        raise Refused.of(f"{bad} of {len(rows)} rows cannot be sent{more}", faults)
    return results


def fan_out(
    batch_id: str,
    *,
    store: BatchStore,
    queues: Callable[[str], TaskQueue],
    chunks: int = RUN_CHUNKS,
) -> bool:
    """Make up to ``chunks`` chunks of the batch's rows into queued notifications, from where the
    last run stopped, their tasks on ``queues(kind)`` (the rows' kind); True when rows are left
    for another run. A run that dies half-way leaves its last whole chunk done and the rest to
    the next; a cancelled batch stops here."""
    batch = store.get(batch_id)
    if batch is None:
        log.warning("batch %s to fan out is gone (expired, or never stored)", batch_id)
        return False
    rows = queues(batch.kind)
    for _ in range(chunks):
        fanned, published, cancelled = store.cursor(batch_id)
        if published < fanned:
            # Another broker than this Redis: rows made by a run that died before publishing
            # them. Publishing again is safe: a row is claimed once, whatever its messages.
            for index in range(published, fanned):
                rows.publish(row_id(batch_id, index))
            store.published(batch_id, fanned)
        if cancelled or fanned >= batch.total:
            return False
        chunk = store.chunk(batch_id, fanned)
        if chunk is None:
            log.error("batch %s lost its rows from %d on (expired?)", batch_id, fanned)
            return False
        ids = [row_id(batch_id, chunk.start + i) for i in range(len(chunk.rows))]
        extra = {"test": True} if batch.test else {}
        payloads = [
            json.dumps({"batch": batch_id, "to": to, "data": data, **extra})
            for to, data, _, _ in chunk.rows
        ]
        # With this Redis as the broker the messages go in the chunk's own step; else after.
        messages = [(rows.direct(i) or ("", ""))[1] for i in ids]
        made = store.fan_out(batch, chunk, payloads=payloads, messages=messages, queue=rows.queue)
        if made == 1:
            if not all(messages):
                for notification_id in ids:
                    rows.publish(notification_id)
            store.published(batch_id, chunk.start + len(ids))
    fanned, _, cancelled = store.cursor(batch_id)
    return not cancelled and fanned < batch.total


def cancel_batch(
    batch_id: str, *, store: BatchStore, notifications: NotificationStore
) -> tuple[str, Batch | None]:
    """Cancel what of the batch has not gone out: ``cancelled`` with the batch as it is now,
    ``done`` (nothing left to cancel), or ``missing``."""
    outcome, fanned, client = store.cancel(batch_id)
    if outcome != "cancelled":
        return outcome, None
    for start in range(0, fanned, CHUNK):
        ids = [row_id(batch_id, i) for i in range(start, min(fanned, start + CHUNK))]
        notifications.cancel_many(ids, CANCELLABLE, client=client)
    return outcome, store.get(batch_id)


class BatchContents:
    """Turns a batch row's payload into what its notification sends: the batch's content (read
    once per process and batch; the ``KEEP`` batches used last are kept at hand) rendered with
    the row's data by :meth:`row`, which a kind of batch defines."""

    KEEP = 64

    def __init__(self, store: BatchStore) -> None:
        self._store = store
        self._content: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._lock = threading.Lock()

    def expand(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload to send: a row's rendered, anything else as it is."""
        batch_id = payload.get("batch")
        if batch_id is None:
            return payload
        content = self._content_of(batch_id)
        if content is None:
            raise PermanentProviderError("the batch's content expired", provider="batch")
        try:
            expanded = self.row(content, payload)
        except Refused as e:
            # The template changed since the batch was accepted, and no longer fits this row.
            raise PermanentProviderError(
                f"the row no longer renders: {e.detail}", provider="batch"
            ) from None
        return {**expanded, "test": True} if payload.get("test") else expanded

    def row(self, content: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """The payload of the row ``payload`` of a batch whose content is ``content``."""
        raise NotImplementedError

    def _content_of(self, batch_id: str) -> dict[str, Any] | None:
        with self._lock:
            if batch_id in self._content:
                self._content.move_to_end(batch_id)
                return self._content[batch_id]
        content = self._store.content(batch_id)
        with self._lock:
            self._content[batch_id] = content
            while len(self._content) > self.KEEP:
                self._content.popitem(last=False)
        return content


class RowMails(BatchContents):
    """A mail batch's rows: the batch's content rendered with the row's data."""

    def __init__(self, store: BatchStore, templates: MailTemplates) -> None:
        super().__init__(store)
        self._templates = templates

    def row(self, content: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """The row's mail, as a single mail's payload holds one."""
        subject, text, html = compose(
            template=content["template"], data=payload["data"], subject=content["subject"],
            text=content["text"], html=content["html"], templates=self._templates,
        )  # fmt: skip
        return {
            "sender": content["sender"], "to": [payload["to"]], "cc": [], "bcc": [],
            "reply_to": None, "subject": subject, "text": text, "html": html,
            "client": content.get("client"), "bulk": True,
        }  # fmt: skip
