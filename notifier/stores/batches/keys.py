"""The keys of the batch store, and the ids of a batch and its rows.

Keys (``<id>`` is the batch id, ``{s}`` the hash tag of its shard: see
:mod:`notifier.stores.slots`; its rows are notifications in the same shard):

* ``notifier:{s}:b:<id>``  hash: the batch (client, total, reference, times), its counts per
  status (``c:<status>``), how many rows are final (``final``), how many rows are fanned out
  (``fanned``; ``published`` with a broker other than this Redis), ``cancelled``, ``done_at``;
* ``notifier:{s}:bc:<id>`` JSON: what every row shares (sender, template, subject, text, html);
* ``notifier:{s}:br:<id>`` hash: the rows, ``CHUNK`` to a field, as JSON ``[to, data, reference]``;
* ``notifier:{s}:batches`` sorted set: the shard's newest batches (at most ``LISTED``, so it
  has no expiry), by the time each was made: what the console lists, without a SCAN;
* ``notifier:batch_pending:<client>`` rows of the client's batches that were not done when it
  last asked for an allowance.
"""

from __future__ import annotations

import uuid

from notifier.stores.slots import every_shard, in_shard, shard

CHUNK = 500  # rows fanned out in one Redis step, and kept in one field
LISTED = 200  # batches a shard's list keeps, its newest
STATUSES = ("scheduled", "queued", "sending", "retrying", "sent", "delivered", "undelivered",
            "failed", "cancelled", "suppressed")  # fmt: skip


def batch_key(batch_id: str) -> str:
    return in_shard(batch_id, f"b:{batch_id}")


def content_key(batch_id: str) -> str:
    return in_shard(batch_id, f"bc:{batch_id}")


def rows_key(batch_id: str) -> str:
    return in_shard(batch_id, f"br:{batch_id}")


def listed_key(batch_id: str) -> str:
    """The list of newest batches of ``batch_id``'s shard."""
    return in_shard(batch_id, "batches")


def listed_keys() -> list[str]:
    """Every shard's list of newest batches."""
    return every_shard("batches")


def pending_key(client: str) -> str:
    return f"notifier:batch_pending:{client}"


def new_batch_id() -> str:
    """A random batch id whose rows will share its shard: a UUID of version 8 (RFC 9562's
    custom kind), told apart so from the version-4 ids of batches made before rows did."""
    return str(uuid.UUID(int=(uuid.uuid4().int & ~(0xF << 76)) | (8 << 76)))


def row_id(batch_id: str, index: int) -> str:
    """The notification id of row ``index``: the same whenever it is made, and in the batch's
    shard (the first digit is the batch's; a batch from before that keeps its rows' ids)."""
    derived = str(uuid.uuid5(uuid.UUID(batch_id), str(index)))
    if uuid.UUID(batch_id).version != 8:
        return derived
    return shard(batch_id) + derived[1:]


# KEYS: pending. ARGV: batch id, rows, limit, ttl, then the batches the caller found done, and
# ' gone' after each it found without a hash. The client's unfinished batches and their rows
# ("rows:since"), a field each: a batch that would take the sum past the limit is refused (-1); one
# already counted (a retried call) is not counted twice. A batch found done, or found gone
# (expired unfinished), no longer counts. The batches live in their own shards, so the caller
