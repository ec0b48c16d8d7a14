"""A batch stored (queued or scheduled), read with its counts, or forgotten.

The counts move in the same Lua step as a row's status (``lua/lib/batch_counts.lua``, which the
notification store's scripts include), so reading them is one ``HGETALL`` however large the
batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, cast

from redis.typing import EncodableT, FieldT

from notifier.schemas import Batch
from notifier.stores.batch_counts import FAN_OUT_MEMBER, scheduled_key
from notifier.stores.batches.base import StoreBase
from notifier.stores.batches.fan_out import Row, stored
from notifier.stores.batches.keys import (
    CHUNK,
    LISTED,
    STATUSES,
    batch_key,
    content_key,
    listed_key,
    listed_keys,
    rows_key,
)
from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339


class Records(StoreBase):
    """Store, read and forget batches."""

    _discard = Lua("batches/discard")

    def create(
        self,
        *,
        batch_id: str,
        client: str,
        content: dict[str, Any],
        rows: Sequence[Row],
        send_at: float | None,
        reference: str | None,
        test: bool,
        callback: bool,
        push: tuple[str, str] | None = None,
        kind: str = "mail",
    ) -> Batch:
        """Store a batch of ``kind`` (its rows' kind: mail, sms), its content and its rows in one
        transaction: queued or scheduled.

        A scheduled batch waits on the schedule; ``push`` is the fan-out task's (list, message)
        for a batch to send now, when the broker is this Redis.
        """
        now = time.time()
        state = "queued" if send_at is None else "scheduled"
        ttl = self.ttl + max(0, int((send_at or now) - now))
        fields: dict[FieldT, EncodableT] = {
            "id": batch_id,
            "client": client,
            "total": len(rows),
            "reference": reference or "",
            "created_at": rfc3339(now),
            "updated_at": rfc3339(now),
            "send_at": "" if send_at is None else rfc3339(send_at),
            "state": state,
            f"c:{state}": len(rows),
            "final": 0,
            "fanned": 0,
            "published": 0,
            "ttl": self.ttl,
            "callback": "1" if callback else "0",
            "mode": "test" if test else "live",
            "kind": kind,
        }
        chunks: dict[FieldT, EncodableT] = {
            str(start // CHUNK): json.dumps(
                [stored(row) for row in rows[start : start + CHUNK]], separators=(",", ":")
            )
            for start in range(0, len(rows), CHUNK)
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(batch_key(batch_id), mapping=fields)
            pipe.set(content_key(batch_id), json.dumps(content), ex=ttl)
            pipe.hset(rows_key(batch_id), mapping=chunks)
            for key in (batch_key(batch_id), rows_key(batch_id)):
                pipe.expire(key, ttl)
            # The shard's newest batches (the console's list), kept to LISTED: bounded, so it
            # needs no expiry (a batch that expired since is left out as it is read).
            pipe.zadd(listed_key(batch_id), {batch_id: now})
            pipe.zremrangebyrank(listed_key(batch_id), 0, -LISTED - 1)
            if send_at is not None:
                pipe.zadd(scheduled_key(batch_id), {FAN_OUT_MEMBER + batch_id: send_at})
            if push is not None:
                pipe.lpush(*push)
            pipe.execute()
        return shown({str(k): str(v) for k, v in fields.items()})

    def discard(self, batch_id: str) -> bool:
        """Forget a batch that was never accepted (its fan-out could not be queued); False, and
        kept, when its fan-out has made rows already (the broker took the message though its
        publish failed: batches/discard.lua, which runs past maxmemory as a notification's
        does)."""
        keys = [
            batch_key(batch_id), content_key(batch_id), rows_key(batch_id),
            scheduled_key(batch_id), listed_key(batch_id),
        ]  # fmt: skip
        return bool(self._discard(keys=keys, args=[batch_id, FAN_OUT_MEMBER + batch_id]))

    def get(self, batch_id: str) -> Batch | None:
        """The batch with its counts, or None when unknown or expired."""
        fields = cast(dict[str, str], self.redis.hgetall(batch_key(batch_id)))
        return shown(fields) if "total" in fields else None

    def recent(self, limit: int) -> list[Batch]:
        """Up to ``limit`` batches, newest first, from every shard's list of its newest (one
        round trip for the lists, one for the batches; those expired since are left out)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in listed_keys():
                pipe.zrevrange(key, 0, limit - 1, withscores=True)
            listed = cast(list[list[tuple[str, float]]], pipe.execute())
        newest = sorted((pair for shard in listed for pair in shard), key=lambda p: -p[1])
        with self.redis.pipeline(transaction=False) as pipe:
            for batch_id, _ in newest[:limit]:
                pipe.hgetall(batch_key(batch_id))
            found = cast(list[dict[str, str]], pipe.execute())
        return [shown(fields) for fields in found if "total" in fields]

    def content(self, batch_id: str) -> dict[str, Any] | None:
        """What every row of the batch shares, or None once expired."""
        raw = cast(str | None, self.redis.get(content_key(batch_id)))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))


def shown(fields: dict[str, str]) -> Batch:
    total = int(fields["total"])
    counts = {s: int(fields.get(f"c:{s}", 0)) for s in STATUSES}
    if fields.get("cancelled") == "1":
        status = "cancelled"
    elif fields.get("done_at"):
        status = "done"
    elif fields.get("state") == "scheduled":
        status = "scheduled"
    elif counts["queued"] == total:
        status = "queued"
    else:
        status = "sending"
    return Batch.model_construct(
        id=fields["id"],
        client=fields["client"],
        test=fields.get("mode") == "test",
        kind=fields.get("kind") or "mail",
        status=status,
        total=total,
        counts={s: n for s, n in counts.items() if n},
        reference=fields.get("reference") or None,
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
        send_at=fields.get("send_at") or None,
    )
