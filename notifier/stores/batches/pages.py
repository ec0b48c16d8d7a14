"""A batch's rows read a page at a time, with each row's status (``GET /v1/mail/batch/<id>/items``).

A row fanned out has a record of its own; one not yet has the batch's status and its reference
from the rows' chunk.
"""

from __future__ import annotations

from typing import cast

from notifier.schemas import Batch, BatchItem
from notifier.stores.batches.fan_out import FanOut
from notifier.stores.batches.keys import CHUNK, row_id
from notifier.stores.notifications import record_key


class Pages(FanOut):
    """Read a page of rows (a row not fanned out is read from its chunk)."""

    def page(
        self,
        batch: Batch,
        *,
        status: str | None,
        start: int,
        limit: int,
        scan: int,
        made: set[str] | None = None,
    ) -> tuple[list[BatchItem], int | None]:
        """Up to ``limit`` rows from row ``start`` on, of ``status`` if given, looking at no more
        than ``scan`` rows; the items and where the next page starts (None at the end). The ids
        of the rows read from their own records (made into notifications) go in ``made``."""
        fanned, _, cancelled = self.cursor(batch.id)
        # A row not fanned out yet has no record: its status is the batch's.
        unmade = (
            "cancelled" if cancelled else "scheduled" if batch.status == "scheduled" else "queued"
        )
        found: list[tuple[int, BatchItem]] = []
        index = start
        end = min(batch.total, start + scan)
        while index < end and len(found) <= limit:
            upto = min(end, (index // CHUNK + 1) * CHUNK)
            found += self._rows(batch.id, index, upto, fanned, unmade, status, made)
            index = upto
        if len(found) > limit:
            index = found[limit][0]  # the next page starts at the first row past this one
        items = [item for _, item in found[:limit]]
        return items, (index if index < batch.total else None)

    def _rows(
        self,
        batch_id: str,
        start: int,
        end: int,
        fanned: int,
        unmade: str,
        status: str | None,
        made_ids: set[str] | None,
    ) -> list[tuple[int, BatchItem]]:
        """Rows ``start`` to ``end`` (within one chunk) of ``status``, with their indexes."""
        ids = [row_id(batch_id, i) for i in range(start, end)]
        with self.redis.pipeline(transaction=False) as pipe:
            for notification_id in ids[: max(0, fanned - start)]:
                pipe.hmget(record_key(notification_id), "status", "reference", "error")
            made = cast(list[list[str | None]], pipe.execute())
        chunk = self.chunk(batch_id, start) if len(made) < len(ids) else None
        if chunk is None and len(made) < len(ids):
            # Fanned out since the cursor was read (the fan-out deletes a chunk as it makes its
            # rows): the rows have records now. Else every row of it was skipped as expired.
            with self.redis.pipeline(transaction=False) as pipe:
                for notification_id in ids[len(made) :]:
                    pipe.hmget(record_key(notification_id), "status", "reference", "error")
                made += cast(list[list[str | None]], pipe.execute())
        items: list[tuple[int, BatchItem]] = []
        for offset, notification_id in enumerate(ids):
            index = start + offset
            if offset < len(made):
                row_status, reference, error = made[offset]
                if row_status is None:
                    continue  # expired
                if made_ids is not None:
                    made_ids.add(notification_id)
            elif chunk is None:
                continue  # the batch expired while this page was read
            else:
                row_status, reference, error = unmade, chunk.rows[index % CHUNK][2], None
            if status is None or row_status == status:
                item = BatchItem.model_construct(
                    id=notification_id, status=row_status, reference=reference or None,
                    error=error or None,
                )  # fmt: skip
                items.append((index, item))
        return items
