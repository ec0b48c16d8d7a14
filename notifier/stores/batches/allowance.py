"""Each client's pending allowance: how many rows of its batches are not done yet.

``notifier:batch_pending:<client>`` holds a field an unfinished batch; a batch that would take the
client past ``NOTIFIER_BATCH_MAX_PENDING`` rows is refused (429) before it is stored.
"""

from __future__ import annotations

from redis.typing import EncodableT

from notifier.schemas import MAX_SCHEDULE_AHEAD
from notifier.stores.batches.base import StoreBase
from notifier.stores.batches.keys import batch_key, pending_key
from notifier.stores.scripts import Lua


class Allowance(StoreBase):
    """Take a batch's rows from its client's allowance, or give them back."""

    _take_pending = Lua("batches/take_pending")

    def take_pending(self, client: str, batch_id: str, rows: int, limit: int) -> bool:
        """Count the batch's ``rows`` against the client's rows in unfinished batches; False
        when that would pass ``limit``. Safe to repeat: a batch is counted once."""
        # Kept past the longest a batch can live: scheduled 30 days ahead, then its retention.
        ttl = self.ttl + int(MAX_SCHEDULE_AHEAD.total_seconds())
        held = [str(b) for b in self.redis.hkeys(pending_key(client))]
        with self.redis.pipeline(transaction=False) as pipe:
            for other in held:
                pipe.hget(batch_key(other), "done_at")
                pipe.exists(batch_key(other))
            seen = pipe.execute()
        finished: list[str] = []
        for other, done_at, exists in zip(held, seen[::2], seen[1::2], strict=True):
            if done_at:
                finished.append(other)
            elif not exists:
                finished.append(f"{other} gone")
        args: list[EncodableT] = [batch_id, rows, limit, ttl, *finished]
        taken = self._take_pending(keys=[pending_key(client)], args=args)
        return int(taken) > 0

    def give_back(self, client: str, batch_id: str) -> None:
        """Undo :meth:`take_pending` for a batch that was not accepted."""
        self.redis.hdel(pending_key(client), batch_id)
