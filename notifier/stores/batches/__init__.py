"""Batches kept in Redis: the batch and its counts, its content, its rows, its fan-out cursor
(the keys are listed in :mod:`.keys`).

One store to its callers (``runtime.batches``), made of one part a concern, as the notification
store is: :mod:`.allowance` (each client's pending rows), :mod:`.records` (store, read,
forget), :mod:`.fan_out` (rows into notifications, a chunk at a time, and cancel), :mod:`.pages`
(rows read a page at a time). Each part's scripts are under ``notifier/stores/lua/batches/``.
"""

from __future__ import annotations

from notifier.stores.batches.allowance import Allowance
from notifier.stores.batches.fan_out import Chunk, Row
from notifier.stores.batches.keys import CHUNK, STATUSES, batch_key, new_batch_id, row_id
from notifier.stores.batches.pages import Pages
from notifier.stores.batches.records import Records

__all__ = [
    "CHUNK", "STATUSES", "BatchStore", "Chunk", "Row", "batch_key", "new_batch_id", "row_id",
]  # fmt: skip


class BatchStore(Allowance, Records, Pages):
    """Create, read, fan out and cancel batches in Redis."""
