"""Fanning a batch out: its rows, a chunk at a time, made into notifications of their own.

A row's notification id is derived from the batch id and its index (in the batch's shard), so a
fan-out that dies half-way and starts again makes the same notifications; the cursor
(``fanned``) moves in the same step as a chunk is made, so a chunk is made once, whoever runs
it. A cancel stops the fan-out where it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from notifier.schemas import Batch
from notifier.stores.batch_counts import scheduled_key
from notifier.stores.batches.base import StoreBase
from notifier.stores.batches.keys import CHUNK, batch_key, row_id, rows_key
from notifier.stores.notifications import payload_key, record_fields, record_key
from notifier.stores.notifications.log import kept, tags_of
from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339

# A batch's row: its recipient, its data, its reference, and the fields its record has beside
# the ones every row's has (an SMS's segments).
Row = tuple[str, dict[str, Any], str | None, dict[str, str]]


def stored(row: Row) -> list[Any]:
    """A row as its chunk keeps it: ``[to, data, reference]``, and its fields when it has some."""
    to, data, reference, fields = row
    return [to, data, reference, fields] if fields else [to, data, reference]


@dataclass(frozen=True)
class Chunk:
    """Rows of a batch to make into notifications: ``start`` is the index of the first."""

    start: int
    rows: list[Row]


class FanOut(StoreBase):
    """Read the cursor and the rows, make a chunk, mark it published, cancel."""

    _fan_out = Lua("batches/fan_out")
    _published = Lua("batches/published")
    _cancel = Lua("batches/cancel")

    def cursor(self, batch_id: str) -> tuple[int, int, bool]:
        """How many rows are fanned out, how many of those published, and if it is cancelled."""
        fanned, published, cancelled = cast(
            list[str | None],
            self.redis.hmget(batch_key(batch_id), "fanned", "published", "cancelled"),
        )
        return int(fanned or 0), int(published or 0), cancelled == "1"

    def chunk(self, batch_id: str, start: int) -> Chunk | None:
        """The chunk of rows that starts at row ``start``, or None past the last."""
        raw = cast(str | None, self.redis.hget(rows_key(batch_id), str(start // CHUNK)))
        if raw is None:
            return None
        rows: list[Row] = [
            (str(to), dict(data), ref, dict(more[0]) if more else {})
            for to, data, ref, *more in json.loads(raw)
        ]
        return Chunk(start, rows)

    def fan_out(
        self,
        batch: Batch,
        chunk: Chunk,
        *,
        payloads: Sequence[str],
        messages: Sequence[str],
        queue: str,
    ) -> int:
        """Make a chunk of rows into queued notifications, with their messages (or '' for each,
        to publish after). 1 when done here; 0 when another run did it first; -1 if cancelled.
        """
        moment = time.time()
        now = rfc3339(moment)
        ids = [row_id(batch.id, chunk.start + i) for i in range(len(chunk.rows))]
        common = record_fields(
            client=batch.client, kind=batch.kind, status="queued", now=now, test=batch.test,
            queued_at=moment, extra={"batch": batch.id},
        )  # fmt: skip
        keys: list[str] = [batch_key(batch.id), queue]
        args: list[str | int | bytes] = [
            chunk.start, chunk.start + len(chunk.rows), self.ttl, now,
            json.dumps([v for pair in common.items() for v in pair]), batch.client, batch.kind,
            kept(self.ttl),
        ]  # fmt: skip
        for notification_id, (to, _, reference, fields), payload, message in zip(
            ids, chunk.rows, payloads, messages, strict=True
        ):
            keys += [record_key(notification_id), payload_key(notification_id)]
            own = json.dumps([v for pair in fields.items() for v in pair])
            tags = tags_of(self.log_secret, [to], reference)
            args += [notification_id, reference or "", payload, message, own, tags]
        made = int(self._fan_out(keys=keys, args=args))
        if made == 1:
            # Its rows are notifications now, each with the payload its send needs: the chunk's
            # copy of their recipients goes (pages read a chunk only for rows not made yet). A
            # run that dies before this leaves it until the batch expires.
            self.redis.hdel(rows_key(batch.id), str(chunk.start // CHUNK))
        return made

    def published(self, batch_id: str, rows: int) -> None:
        """Rows up to ``rows`` have their messages published (a broker other than this Redis)."""
        self._published(keys=[batch_key(batch_id)], args=[rows])

    def cancel(self, batch_id: str) -> tuple[str, int, str]:
        """Mark the batch cancelled and cancel its rows not fanned out yet.

        (``cancelled``, rows fanned out, whose notifications the caller cancels, the batch's
        client), ``done`` (409: every row is final already), or ``missing``.
        """
        outcome, fanned, client = self._cancel(
            keys=[batch_key(batch_id), scheduled_key(batch_id)],
            args=[batch_id, rfc3339(time.time())],
        )
        return str(outcome), int(fanned), str(client)
