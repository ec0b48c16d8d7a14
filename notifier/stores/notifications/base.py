"""What every part of the notification store shares: its Redis, the retention, the durable
write, and the status callbacks a status change queues.

Every status change is one Lua script on one slot (``notifier/stores/lua/notifications/``), so
two workers cannot both move a record. A script that reaches a final status pushes the client's
callback message in the same step when the broker is this Redis; with another broker it answers
"due" and the callback is published after (:meth:`StoreBase._publish_if_due`); one whose publish
fails is owed, and published again by the sweep (:meth:`StoreBase.publish_owed`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from redis import Redis, RedisError

from notifier.queueing import Enqueuer
from notifier.redisconn import Replication, described
from notifier.stores.notifications.keys import CALLBACK_STATUSES, METRICS, metrics_keys, record_key
from notifier.stores.slots import SHARDS, shard_key

T = TypeVar("T")
log = logging.getLogger(__name__)
# Callbacks whose publish failed (another broker than this Redis, refusing or away), by when to
# publish them again: the status they tell of has moved, and nothing else would tell it.
OWED = "notifier:callbacks_owed"
OWED_AGAIN = 10.0  # seconds between tries of an owed callback


def list_of(callback: tuple[str, str] | None) -> list[str]:
    """The callback list a script pushes the message to, as its last key: none without one."""
    return [callback[0]] if callback and callback[0] else []


class StoreBase:
    """The state every part of the store reads: set once, by the store's constructor."""

    def __init__(
        self,
        redis: Redis,
        ttl: int,
        *,
        callbacks: Enqueuer | None = None,
        callback_clients: frozenset[str] = frozenset(),
        replication: Replication | None = None,
        patience: float = 30.0,
        retry_cap: float = 600.0,
        kept_events: Callable[[str, str, Sequence[str], Sequence[str]], object] | None = None,
        log_secret: bytes = b"",
    ) -> None:
        self.redis = redis
        self.ttl = ttl
        # Keys the message log's hashes of recipients and references (see notifications/log.py).
        self.log_secret = log_secret
        # A worker's claim holds before it sends, and its outcome before its message is
        # acknowledged, on enough replicas to outlive a failover (see notifier.redisconn).
        self.replication = replication or Replication(0, 0)
        self.patience = patience
        # A retrying notification's message waits at most this long before it is due again.
        self.retry_cap = retry_cap
        # The claim this thread holds, as (id, claim): its outcome is recorded under it, once.
        self._held = threading.local()
        # Whose notifications get status callbacks, and where those are queued.
        self._callbacks = callbacks if callback_clients else None
        self._callback_clients = " " + " ".join(sorted(callback_clients)) + " "
        # Who applies a mail provider's events that came before their send was recorded, given
        # (provider, ref, the lines kept): see notifications/events.py.
        self._kept_events = kept_events

    def _durably(
        self, write: Callable[[], T], patience: float | None = None, *, reconnect: bool = False
    ) -> T:
        """A worker's write that must outlive the primary: confirmed by its replicas, or made
        again on the one promoted after it (the write is safe to repeat), for ``patience``
        seconds (the store's, unless given); with ``reconnect``, made again after a lost
        connection without replicas too (see RedisReplication.durably)."""
        return self.replication.durably(
            self.redis,
            write,
            patience=self.patience if patience is None else patience,
            reconnect=reconnect,
        )

    def count(self, counter: str) -> None:
        """Add one to a counter of /metrics (e.g. ``callbacks:sent``)."""
        self.redis.hincrby(shard_key(SHARDS[0], METRICS), counter, 1)

    def tally(self, counter: str) -> None:
        """Add one to a counter of /metrics after what it counts was done, if Redis lets us: a
        Redis that refuses (full) must not turn a send a provider took into a failed attempt."""
        try:
            self.count(counter)
        except RedisError as e:
            log.warning("%s was not counted: %s", counter, described(e))

    def counted(self, counter: str) -> int:
        """A counter of /metrics: every shard's, added up."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in metrics_keys():
                pipe.hget(key, counter)
            return sum(int(value or 0) for value in pipe.execute())

    def _tell(self, notification_id: str, status: str) -> None:
        """Queue a callback for a status a script reached without one."""
        if self._callbacks is None:
            return
        client = cast(str | None, self.redis.hget(record_key(notification_id), "client"))
        if client is not None and f" {client} " in self._callback_clients:
            callback = self._callback(notification_id, status)
            if callback and callback[0]:
                self.redis.lpush(*callback)
            else:
                self._publish_if_due(notification_id, status, ("", ""), 1)

    def _callback(self, notification_id: str, status: str) -> tuple[str, str] | None:
        """The callback message to push with the status change, if any can go in it."""
        if self._callbacks is None or status not in CALLBACK_STATUSES:
            return None
        event = (status, f"msg_{uuid.uuid4().hex}", int(time.time()))
        return self._callbacks.direct(notification_id, *event) or ("", "")

    def _publish_if_due(
        self, notification_id: str, status: str, callback: tuple[str, str] | None, due: int
    ) -> None:
        # Another broker than this Redis: the callback is published after the status changed.
        if due and callback == ("", "") and self._callbacks is not None:
            webhook_id, at = f"msg_{uuid.uuid4().hex}", int(time.time())
            try:
                self._callbacks.publish(notification_id, status, webhook_id, at)
            except Exception as e:  # the broker's: a memory alarm, a confirm that never came
                # A receipt's retry, or the claim of a send already recorded, finds nothing left
                # to move: owed, or the client would never hear of it.
                event = json.dumps([notification_id, status, webhook_id, at])
                self.redis.zadd(OWED, {event: time.time() + OWED_AGAIN})
                log.warning("%s: its %s callback is owed: %s", notification_id, status, e)

    def publish_owed(self, now: float, most: int = 100) -> int:
        """Publish again the owed callbacks that are due (up to ``most``), oldest first, each
        with the webhook id it was first given, so a receiver can tell a repeat; how many went.
        The first that fails again puts off the rest to the next sweep (the broker is away
        still)."""
        published = 0
        due = cast(list[str], self.redis.zrangebyscore(OWED, "-inf", now, start=0, num=most))
        for member in due:
            if self._callbacks is None:  # no client wants callbacks now
                self.redis.zrem(OWED, member)
                continue
            try:
                self._callbacks.publish(*json.loads(member))
            except Exception as e:
                # Left as it is, in its order: the next sweep tries it first again.
                log.warning("owed callbacks wait for the broker: %s", e)
                break
            self.redis.zrem(OWED, member)
            published += 1
        return published
