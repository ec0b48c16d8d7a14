"""The schedule and the open index: what is due to be queued, and what should be on a queue.

* ``notifier:{s}:scheduled``: each shard's ids (and batch members) scored by when they are due;
  :meth:`Schedule.lease_due` leases the due ones to one dispatcher, :meth:`Schedule.dispatched`
  takes one off once its message is on its lane;
* ``notifier:{s}:open``: each shard's ids whose message should be on a queue or in a worker's
  hands, scored by when to look for it as lost (``requeue_lost``, notifier.tasks.schedule). The
  status scripts keep it (``open_moved`` in lib/batch_counts.lua); :meth:`Schedule.reopened`
  moves a look later.
"""

from __future__ import annotations

import time
from typing import cast

from notifier.stores.batch_counts import OPEN, SCHEDULED, member_id, open_key, scheduled_key
from notifier.stores.notifications.base import StoreBase
from notifier.stores.notifications.keys import DISPATCHED_AT, record_key
from notifier.stores.scripts import Lua
from notifier.stores.slots import SHARDS, shard_key
from notifier.timestamps import rfc3339


class Schedule(StoreBase):
    """Lease due members, mark them dispatched, find open ones to look for."""

    _lease_due = Lua("notifications/lease_due")
    _dispatched = Lua("notifications/dispatched")

    def open_since(self, before: float, limit: int = 100) -> list[str]:
        """Ids queued or retrying since before ``before`` (oldest first, of every shard):
        messages to look for."""
        with self.redis.pipeline(transaction=False) as pipe:
            for which in SHARDS:
                pipe.zrangebyscore(
                    shard_key(which, OPEN), "-inf", before, 0, limit, withscores=True
                )
            found = cast(list[list[tuple[str, float]]], pipe.execute())
        oldest = sorted((score, str(i)) for shard_ids in found for i, score in shard_ids)
        return [i for _, i in oldest[:limit]]

    def reopened(
        self, notification_id: str, after: float = 0.0, *, now: float | None = None
    ) -> None:
        """Its message was put on the queue (again) and is due in ``after`` seconds (from
        ``now``, the clock's unless given): looked for as lost only some time after that."""
        at = (time.time() if now is None else now) + after
        self.redis.zadd(open_key(notification_id), {notification_id: int(at)}, xx=True)

    def reopened_all(self, ids: list[str], *, now: float) -> None:
        """:meth:`reopened` for each of ``ids``, as of ``now``, in one round trip."""
        if not ids:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for notification_id in ids:
                pipe.zadd(open_key(notification_id), {notification_id: int(now)}, xx=True)
            pipe.execute()

    def forget_open(self, notification_id: str) -> None:
        """Not open any more (its record is gone, or moved on without this index knowing)."""
        self.redis.zrem(open_key(notification_id), notification_id)

    def lease_due(self, *, now: float, lease: float, limit: int = 500) -> list[str]:
        """Members due by ``now`` (up to ``limit`` of each shard), leased for ``lease`` seconds
        so no other dispatcher takes them."""
        with self.redis.pipeline(transaction=False) as pipe:
            for which in SHARDS:
                keys = [shard_key(which, SCHEDULED), shard_key(which, DISPATCHED_AT)]
                self._lease_due(keys=keys, args=[now, now + lease, limit], client=pipe)
            due = cast(list[list[str]], pipe.execute())
        return [str(member) for shard_due in due for member in shard_due]

    def dispatched(self, member: str) -> None:
        """A due member is on the queue: drop it from the schedule, mark a notification queued."""
        owner = member_id(member)
        keys = [record_key(owner), scheduled_key(owner), open_key(owner)]
        now = time.time()
        self._dispatched(keys=keys, args=[member, rfc3339(now), owner, now])
