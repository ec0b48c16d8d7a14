"""Batches: one request, up to 10,000 personal mails.

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
from dataclasses import dataclass
from typing import Any

from notifier.errors import Fault, Limited, PermanentProviderError, Refused
from notifier.queueing import Intake, Note, TaskQueue
from notifier.schemas import Batch, BatchRequest
from notifier.services.mail import compose
from notifier.stores.batches import CHUNK, BatchStore, new_batch_id, row_id
from notifier.stores.notifications import NotificationStore
from notifier.templating import MailTemplates

log = logging.getLogger(__name__)
# A 422 names this many bad rows, and says how many more there are.
MAX_ROW_ERRORS = 100
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
    rows = [(r.to, r.data, r.reference) for r in request.recipients]
    batch_id = new_batch_id()
    if not store.take_pending(client, batch_id, len(rows), max_pending):
        raise Limited(
            PENDING_RETRY_AFTER,
            f"client {client!r} would have more than {max_pending} rows in unfinished batches",
        )
    content = {
        "client": client,
        "sender": sender, "template": request.template, "subject": request.subject,
        "text": request.text, "html": request.html,
    }  # fmt: skip
    send_at = request.send_at.timestamp() if request.send_at else None
    if send_at is not None and send_at <= time.time():
        send_at = None  # due already: send now
    new = NewBatch(
        store, batch_id, client, content, rows, send_at, request.reference, test, callback
    )
    try:
        batch = Intake(queue, note).take(batch_id, new, now=send_at is None)
    except Exception:
        store.give_back(client, batch_id)
        raise
    log.info("batch %s of %d rows accepted for %s", batch_id, len(rows), client)
    return batch


@dataclass(frozen=True)
class NewBatch:
    """A batch a request stores: its record and rows, or, taken back, none."""

    store: BatchStore
    id: str
    client: str
    content: dict[str, Any]
    rows: list[tuple[str, dict[str, Any], str | None]]
    send_at: float | None
    reference: str | None
    test: bool
    callback: bool

    def write(self, push: tuple[str, str] | None) -> Batch:
        """Store the batch, with its fan-out's message ``push`` in the same transaction."""
        return self.store.create(
            batch_id=self.id,
            client=self.client,
            content=self.content,
            rows=self.rows,
            send_at=self.send_at,
            reference=self.reference,
            test=self.test,
            callback=self.callback,
            push=push,
        )

    def take_back(self) -> None:
        """Remove the batch."""
        self.store.discard(self.id)


def _check_rows(request: BatchRequest, templates: MailTemplates) -> None:
    """Render every row once: a fault of the whole batch at once, each bad row's by index."""
    faults: list[Fault] = []
    bad = 0
    for index, row in enumerate(request.recipients):
        try:
            compose(
                template=request.template, data=row.data, subject=request.subject,
                text=request.text, html=request.html, templates=templates,
                row=("recipients", index),
            )  # fmt: skip
        except Refused as e:
            if not any(len(f.field) > 1 and f.field[0] == "recipients" for f in e.faults):
                raise  # the batch's own content is at fault, not this row's
            bad += 1
            if len(faults) < MAX_ROW_ERRORS:
                faults += e.faults
        if request.template is None:
            break  # the same content for every row: one look is enough
    if bad:
        more = f" (the first {MAX_ROW_ERRORS} are named)" if bad > MAX_ROW_ERRORS else ""
        raise Refused.of(
            f"{bad} of {len(request.recipients)} rows cannot be rendered{more}", faults
        )


def fan_out(batch_id: str, *, store: BatchStore, rows: TaskQueue, chunks: int = RUN_CHUNKS) -> bool:
    """Make up to ``chunks`` chunks of the batch's rows into queued notifications, from where the
    last run stopped; True when rows are left for another run. A run that dies half-way leaves
    its last whole chunk done and the rest to the next; a cancelled batch stops here."""
    batch = store.get(batch_id)
    if batch is None:
        log.warning("batch %s to fan out is gone (expired, or never stored)", batch_id)
        return False
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
            for to, data, _ in chunk.rows
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


class RowMails:
    """Turns a batch row's payload into the mail to send: the batch's content (read once per
    process and batch) rendered with the row's data."""

    KEEP = 64  # batches whose content a process keeps at hand

    def __init__(self, store: BatchStore, templates: MailTemplates) -> None:
        self._store = store
        self._templates = templates
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
            subject, text, html = compose(
                template=content["template"], data=payload["data"], subject=content["subject"],
                text=content["text"], html=content["html"], templates=self._templates,
            )  # fmt: skip
        except Refused as e:
            # The template changed since the batch was accepted, and no longer fits this row.
            raise PermanentProviderError(
                f"the row no longer renders: {e.detail}", provider="batch"
            ) from None
        return {
            "sender": content["sender"], "to": [payload["to"]], "cc": [], "bcc": [],
            "reply_to": None, "subject": subject, "text": text, "html": html,
            "client": content.get("client"), "bulk": True,
            **({"test": True} if payload.get("test") else {}),
        }  # fmt: skip

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
