"""kombu's Redis transports (plain and Sentinel) with one fix and one saving, for the broker.

When a worker's broker connection breaks (a Redis restart, the primary lost to a failover), Celery
closes it; kombu 5.7 may then close a channel whose transport it has already let go of, and the
channel, putting its unacknowledged messages back, asks for connection parameters it no longer
has: an ``AttributeError`` that Celery takes as unrecoverable, and the worker exits (seen in
``tests/integration/test_sentinel.py``). Here that channel answers a connection error instead,
which kombu's close ignores; the worker reconnects. What it could not put back stays in the
broker's unacknowledged set and comes back after ``NOTIFIER_BROKER_VISIBILITY_TIMEOUT``, where
the claims keep it from being sent twice. The saving is described at ``_create_client`` below.

And a full Redis (``maxmemory`` with ``noeviction``) takes a worker's acknowledgements: kombu
drops an acknowledged message from its unacknowledged set in a ``MULTI`` transaction, and Redis
up to 7.2 refuses every command queued in one while it is full, even those that free memory.
The acknowledgement failed, Celery took that for a lost connection, and restarted its consumer
while Redis stayed full. Here the two commands (``ZREM``, ``HDEL``; neither needs memory) go in
a plain pipeline.

- Touches: ``kombu.transport.redis.Channel._connparams`` and ``Channel._create_client``
  (overridden, on ``SentinelChannel`` too), relying on ``Channel.pool``,
  ``Channel.conn_or_acquire``, ``Channel.close`` and ``SentinelChannel._get_pool`` as they are;
  ``QoS.ack`` and ``QoS.reject`` (overridden, ``Channel.QoS`` ours), relying on
  ``QoS._remove_from_indices`` being the two commands they make and on
  ``kombu.transport.virtual.base.QoS.ack``.
- Checked with: kombu 5.7.0.
- Upstream: the same ``AttributeError`` from ``_connparams`` on a channel closed after its
  connection is https://github.com/celery/kombu/issues/582 (kombu 3.0, closed; 5.7 reaches it
  through the restore at close); no open issue for it, nor for a client made per command: both
  to be filed. The ``MULTI`` a full Redis refuses is Redis's
  https://github.com/redis/redis/issues/9926, fixed in Redis 7.4
  (https://github.com/redis/redis/pull/12961); kombu's side (no ``MULTI`` for an ack): to be
  filed.
- Canary: ``tests/unit/test_patches.py``: the source of each symbol as checked; kombu's own
  channel still fails its close that way, still makes a client a command, and still cannot
  acknowledge on a full Redis (the suite's, 6.2); ours does none of these.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual


class _ClosedAware:
    connection: Any
    pool: Any
    _command_client: tuple[Any, redis.Redis] | None = None

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is already closed")
        return super()._connparams(asynchronous)  # type: ignore[misc]

    def _create_client(self, asynchronous: bool = False) -> Any:
        # kombu makes a new redis-py client object for every command it sends outside the event
        # loop (each acknowledgement, each publish): a fifth of a draining worker's CPU a mail
        # (bench/README.md, "Every core"). A redis-py client is safe to share between
        # threads (each command takes its own connection from the pool), so one is kept per
        # pool, and made anew when kombu replaces the pool after a broken connection.
        if asynchronous:
            return super()._create_client(asynchronous)  # type: ignore[misc]
        pool, kept = self._command_client or (None, None)
        if kept is None or pool is not self.pool:
            kept = super()._create_client()  # type: ignore[misc]
            self._command_client = (self.pool, kept)
        return kept


class QoS(kombu_redis.QoS):
    """kombu's, acknowledging (and rejecting for good) without a ``MULTI``, which a full Redis
    up to 7.2 refuses whole."""

    def ack(self, delivery_tag: str) -> None:
        self._forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            super().reject(delivery_tag, requeue=True)
            return
        self._forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def _forget(self, delivery_tag: str) -> None:
        # Not atomic, unlike kombu's: an index entry left alone is dropped by the next restore,
        # and a message left without one is only memory, never handed out again.
        channel: Any = self.channel  # kombu's Redis channel (typed as its virtual one)
        with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            pipe.zrem(self.unacked_index_key, delivery_tag)
            pipe.hdel(self.unacked_key, delivery_tag)
            pipe.execute()


class Channel(_ClosedAware, kombu_redis.Channel):
    QoS = QoS


class SentinelChannel(_ClosedAware, kombu_redis.SentinelChannel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def transport_for(url: str) -> str | None:
    """Celery's ``broker_transport`` for a broker URL: ours for Redis, kombu's choice otherwise."""
    if url.startswith("sentinel://"):
        return f"{__name__}:SentinelTransport"
    if url.startswith(("redis://", "rediss://")):
        return f"{__name__}:Transport"
    return None
