"""kombu's Redis transports (plain and Sentinel) with one fix and three savings, for the broker.

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

Two more savings take a draining worker's event loop from four round trips a message to about
one (bench/README.md, "Worker CPU a mail"): a ``BRPOP`` answer is recorded, and the messages
waiting behind it taken while the worker has room, in one script (``_Fetching``; while a
backlog waits, that script alone takes them, without a ``BRPOP``), and the acknowledgements the
loop makes go with that script, or are written together within
``ACKS_WAIT`` when no fetch comes first (``_OnTheLoop``). What a crash between an
acknowledgement and its write leaves is a message kombu brings back after the visibility
timeout, which its claim then finds done: as for an acknowledgement that failed.

- Touches: ``kombu.transport.redis.Channel._connparams`` and ``Channel._create_client``
  (overridden, on ``SentinelChannel`` too), relying on ``Channel.pool``,
  ``Channel.conn_or_acquire``, ``Channel.close`` and ``SentinelChannel._get_pool`` as they are;
  ``QoS.ack`` and ``QoS.reject`` (overridden, ``Channel.QoS`` ours), relying on
  ``QoS._remove_from_indices`` being the two commands they make and on
  ``kombu.transport.virtual.base.QoS.ack``. ``Channel._brpop_read`` (overridden: kombu's, with
  the record and the messages behind it taken in one script), relying on ``Channel._brpop_start``
  (the lists BRPOP names, in that order), ``Channel._q_for_pri``, ``Channel._flush_brpop_reauth``,
  ``round_robin_cycle`` (kombu's queue cycle), ``QoS.append`` (the record it writes, ``[message,
  exchange, routing key]``, and ``kombu.transport.virtual.base:QoS.append``, which ours calls for
  a message the script recorded), ``QoS.restore_by_tag``, ``QoS.can_consume_max_estimate`` and
  ``Channel.basic_consume`` (its callback appends before it hands out); and
  ``Channel._brpop_start`` (extended: a take without a ``BRPOP`` while a backlog waits);
  ``Transport.register_with_event_loop`` (extended: the loop's thread, its timer for the
  acknowledgements' write), relying on ``Hub.create_loop`` running the ready callbacks
  (Celery's acknowledgements), its timers and ``on_tick`` on its own thread, and on
  ``Channel.qos`` keeping the QoS in ``_qos``.
- Checked with: kombu 5.7.0.
- Upstream: the same ``AttributeError`` from ``_connparams`` on a channel closed after its
  connection is https://github.com/celery/kombu/issues/582 (kombu 3.0, closed; 5.7 reaches it
  through the restore at close); no open issue for it, nor for a client made per command: both
  to be filed. The ``MULTI`` a full Redis refuses is Redis's
  https://github.com/redis/redis/issues/9926, fixed in Redis 7.4
  (https://github.com/redis/redis/pull/12961); kombu's side (no ``MULTI`` for an ack): to be
  filed. One message a ``BRPOP`` and a round trip an acknowledgement: none found, to be filed
  (Redis's own https://github.com/redis/redis/issues/936 asks for a ``BLPOP`` that takes more).
- Canary: ``tests/unit/test_patches.py``: the source of each symbol as checked; kombu's own
  channel still fails its close that way, still makes a client a command, and still cannot
  acknowledge on a full Redis (the suite's, 6.2); ours does none of these. kombu's reads take
  five messages one by one in an order ours takes them in at once, each recorded alike; ours
  takes no more than the consumer has room for; acknowledgements on the loop's thread go with
  the next fetch or together on one timer, and a close writes those left; while a backlog
  waits, ours takes without a ``BRPOP`` until the lists are empty.
"""

from __future__ import annotations

import logging
import threading
from queue import Empty
from time import monotonic, time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

# How long an acknowledgement made on the event loop waits, at most, for a fetch to carry it.
ACKS_WAIT = 0.05

# One step for what kombu does in two round trips a message (``BRPOP``'s answer recorded as
# unacknowledged in a ``MULTI``, then ``BRPOP`` again): the message ``BRPOP`` gave is recorded,
# and up to as many more as the worker has room for are taken from the lanes and recorded the
# same way, in the order successive ``BRPOP``s would take them (see ``_Fetching``).
FETCH = """
-- Forget the messages acknowledged since the last write (kombu's QoS.ack), record a message
-- BRPOP handed out as unacknowledged (kombu's QoS.append), then take up to ARGV[5] more from
-- the lists, recording each the same way.
-- KEYS[1] the unacknowledged index (sorted set, tag -> when)
-- KEYS[2] the unacknowledged messages (hash, tag -> [message, exchange, routing key])
-- KEYS[3..] the lists, as BRPOP names them: each queue's list of the first priority step in
--   the consuming order, then each queue's of the next step, ARGV[4] queues a step
-- ARGV[1] now (Unix time)
-- ARGV[2] the delivery tag of the message BRPOP gave ('' for none: only take)
-- ARGV[3] its record: [message, exchange, routing key] as JSON
-- ARGV[4] queues a priority step
-- ARGV[5] how many more to take at most
-- ARGV[6..] the delivery tags of messages acknowledged, if any
-- Returns {queue number (1-based, in the order given), message, ...} for each one taken.
-- First a write that needs no memory (notifier/stores/lua/lib/past_full.lua): a full Redis lets
-- the script run to its end, where it would refuse it at its first ZADD, after BRPOP had taken
-- the message off its list: lost (a status callback for good, with no sweep to find it).
redis.call('HDEL', KEYS[2], 'past-full')
if #ARGV > 5 then
  redis.call('ZREM', KEYS[1], unpack(ARGV, 6))
  redis.call('HDEL', KEYS[2], unpack(ARGV, 6))
end
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
local queues, want = tonumber(ARGV[4]), tonumber(ARGV[5])
local steps = (#KEYS - 2) / queues
local order = {}
for i = 1, queues do order[i] = i end
local taken = {}
while want > 0 do
  local at, queue, message, list
  for step = 0, steps - 1 do
    for position = 1, queues do
      list = KEYS[2 + step * queues + order[position]]
      message = redis.call('RPOP', list)
      if message then
        at, queue = position, order[position]
        break
      end
    end
    if message then break end
  end
  if not message then break end
  local ok, decoded = pcall(cjson.decode, message)
  local properties = ok and type(decoded) == 'table' and decoded['properties']
  local tag = type(properties) == 'table' and properties['delivery_tag']
  local info = tag and properties['delivery_info']
  if type(tag) ~= 'string' or type(info) ~= 'table' or type(info['exchange']) ~= 'string'
      or type(info['routing_key']) ~= 'string' then
    -- Not one this step can record: back where it was, for BRPOP and kombu to handle.
    redis.call('RPUSH', list, message)
    break
  end
  redis.call('ZADD', KEYS[1], ARGV[1], tag)
  redis.call('HSET', KEYS[2], tag, '[' .. message .. ',' .. cjson.encode(info['exchange'])
    .. ',' .. cjson.encode(info['routing_key']) .. ']')
  -- Round robin, as kombu's cycle: the queue just served goes last.
  table.remove(order, at)
  order[queues] = queue
  taken[#taken + 1] = queue
  taken[#taken + 1] = message
  want = want - 1
end
return taken
"""


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


class _Fetching:
    """kombu's read of a ``BRPOP`` answer, in one round trip for as many messages as there is room.

    kombu records each message ``BRPOP`` hands out as unacknowledged (a ``MULTI``: a round trip
    from the event loop), hands it to the worker, and sends ``BRPOP`` again for the next: with
    a backlog, every message cost the loop two round trips and a turn of the loop. Here the
    record is one script that also takes, while the worker has room (its prefetch), the next
    messages from the same lists in the order successive ``BRPOP``s would, records each, and
    hands them all out: the same records, the same order, the same round robin of kombu's
    queue cycle. A message the script cannot record (not kombu's JSON) stays in its list for
    the next ``BRPOP``. And while the last take filled all the room there was (a backlog), the
    loop's next ``BRPOP`` is not sent: the script takes straight away, and ``BRPOP`` is sent
    only once it finds the lists empty. With a ``global_keyprefix`` (keys kombu's client
    rewrites) it is kombu's read.
    """

    client: Any
    connection: Any
    connection_errors: tuple[type[BaseException], ...]
    global_keyprefix: str
    priority_steps: list[int]
    qos: Any
    sep: str
    _in_poll: Any
    _queue_cycle: Any
    _fetch: Any = None
    _backlog = False  # the last take filled the room there was: more may be waiting

    def _brpop_start(self, timeout: int | None = None) -> None:
        # On the event loop's thread only: a synchronous drain_events waits on the poll after.
        on_loop = getattr(self.connection, "loop_thread", None) == threading.get_ident()
        if self._backlog and on_loop and not self.global_keyprefix and self.active_queues:  # type: ignore[attr-defined]
            taken = self._taken()
            if taken:
                self._hand_out(taken)
                if not self.qos.can_consume():
                    return  # no room left: the next turn with room takes (or waits) again
        super()._brpop_start(timeout)  # type: ignore[misc]

    def _brpop_read(self, **options: Any) -> bool:
        if self.global_keyprefix:
            return bool(super()._brpop_read(**options))  # type: ignore[misc]
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # As kombu: the next turn of the loop reconnects.
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self._hand_out(self._taken(dest, bytes_to_str(item)))
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()  # type: ignore[attr-defined]

    def _taken(self, dest: str = "", item: str = "") -> list[tuple[str, dict[str, Any]]]:
        """The message ``BRPOP`` gave (if any) and those taken with it, each recorded, as
        (queue, payload)."""
        taken: list[tuple[str, dict[str, Any]]] = []
        tag = record = ""
        if item:
            payload = loads(item)
            tag = payload["properties"]["delivery_tag"]
            info = payload["properties"]["delivery_info"]
            record = f"[{item},{dumps(info['exchange'])},{dumps(info['routing_key'])}]"
            taken.append((dest, payload))
        queues = self._queue_cycle.consume(len(self.active_queues))  # type: ignore[attr-defined]
        lists = [self._q_for_pri(q, pri) for pri in self.priority_steps for q in queues]  # type: ignore[attr-defined]
        room = max(0, (self.qos.can_consume_max_estimate() or 1) - len(taken))
        # The acknowledgements waiting for a write go with it.
        acknowledged, self.qos.acknowledged = self.qos.acknowledged, []
        try:
            with self.conn_or_acquire() as client:  # type: ignore[attr-defined]
                if self._fetch is None or self._fetch.registered_client is not client:
                    self._fetch = client.register_script(FETCH)
                found = self._fetch(
                    keys=[self.qos.unacked_index_key, self.qos.unacked_key, *lists],
                    args=[time(), tag, record, len(queues), room, *acknowledged],
                )  # fmt: skip
        except BaseException:
            self.qos.acknowledged[:0] = (
                acknowledged  # for the next write (forgetting is idempotent)
            )
            raise
        self._backlog = len(found) // 2 == room  # room 0: taken by BRPOP, more likely wait
        for number, message in zip(found[::2], found[1::2], strict=True):
            queue = queues[int(number) - 1]
            self._queue_cycle.rotate(queue)
            taken.append((queue, loads(bytes_to_str(message))))
        self.qos.recorded.update(p["properties"]["delivery_tag"] for _, p in taken)
        return taken

    def _hand_out(self, taken: list[tuple[str, dict[str, Any]]]) -> None:
        for n, (queue, payload) in enumerate(taken):
            try:
                self.connection._deliver(payload, queue)
            except BaseException:
                # The rest are recorded and handed to no one: back to the front of their lists.
                for _, rest in taken[n + 1 :]:
                    tag = rest["properties"]["delivery_tag"]
                    self.qos.recorded.discard(tag)
                    self.qos.restore_by_tag(tag, leftmost=True)
                raise


class QoS(kombu_redis.QoS):
    """kombu's, acknowledging (and rejecting for good) without a ``MULTI``, which a full Redis
    up to 7.2 refuses whole, and not recording again a message the fetch recorded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Delivery tags the fetch recorded as unacknowledged, until kombu appends them.
        self.recorded: set[str] = set()
        # Delivery tags acknowledged on the event loop's thread, not yet forgotten in Redis (see
        # _OnTheLoop).
        self.acknowledged: list[str] = []

    def append(self, message: Any, delivery_tag: str) -> None:
        if delivery_tag in self.recorded:
            self.recorded.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        # On the event loop's thread (Celery's acknowledgements after each task), written with
        # the next fetch, or together soon after (_OnTheLoop): no round trip each.
        transport: Any = self.channel.connection
        if getattr(transport, "loop_thread", None) == threading.get_ident():
            self.acknowledged.append(delivery_tag)
            transport.wait_to_forget(self)
        else:
            self._forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            super().reject(delivery_tag, requeue=True)
            return
        self._forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def forget_acknowledged(self) -> None:
        """Drop the messages acknowledged since the last call from the unacknowledged set."""
        tags, self.acknowledged = self.acknowledged, []
        if tags:
            self._forget(*tags)

    def _forget(self, *delivery_tags: str) -> None:
        # Not atomic, unlike kombu's: an index entry left alone is dropped by the next restore,
        # and a message left without one is only memory, never handed out again.
        channel: Any = self.channel  # kombu's Redis channel (typed as its virtual one)
        with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            pipe.zrem(self.unacked_index_key, *delivery_tags)
            pipe.hdel(self.unacked_key, *delivery_tags)
            pipe.execute()


class _Acknowledged:
    """What a channel closes with: the acknowledgements its loop had not yet written."""

    _qos: Any

    def close(self) -> None:
        qos = self._qos
        if qos is not None and qos.acknowledged:
            try:
                qos.forget_acknowledged()
            except (redis.RedisError, OSError) as e:
                # As an acknowledgement kombu could not write: the message comes back after the
                # visibility timeout, and its claim finds it done.
                log.warning("acknowledgements not written at close: %s", e)
        super().close()  # type: ignore[misc]


class Channel(_Fetching, _Acknowledged, _ClosedAware, kombu_redis.Channel):
    QoS = QoS


class SentinelChannel(_Fetching, _Acknowledged, _ClosedAware, kombu_redis.SentinelChannel):
    QoS = QoS


class _OnTheLoop:
    """A transport whose channels' acknowledgements made on the event loop's thread are written
    with the next fetch (``_Fetching``: while messages wait, no round trip of their own), or
    together once ``ACKS_WAIT`` has passed, whichever comes first."""

    loop: Any = None
    loop_thread: int | None = None
    _due: float | None = None  # when the acknowledgements waiting are written at the latest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The channels' QoS with acknowledgements waiting for a write.
        self.waiting: set[QoS] = set()

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)  # type: ignore[misc]
        self.loop = loop
        loop.on_tick.add(self._on_tick)

    def _on_tick(self) -> None:
        self.loop_thread = threading.get_ident()
        if self._due is not None and monotonic() >= self._due:
            self.forget_acknowledged()  # the timer's job, had the loop lost its timer

    def wait_to_forget(self, qos: QoS) -> None:
        """Write ``qos``'s acknowledgements with its next fetch, or within ``ACKS_WAIT``."""
        self.waiting.add(qos)
        if self._due is None:
            self._due = monotonic() + ACKS_WAIT
            self.loop.call_later(ACKS_WAIT, self.forget_acknowledged)

    def forget_acknowledged(self) -> None:
        """Write every acknowledgement waiting."""
        self._due = None
        transport: Any = self  # kombu's Redis transport
        waiting, self.waiting = self.waiting, set()
        for qos in waiting:
            try:
                qos.forget_acknowledged()
            except transport.connection_errors + transport.channel_errors as e:
                # What kombu's Message.ack_log_error does with an acknowledgement that failed.
                log.critical("could not acknowledge messages: %r", e)


class Transport(_OnTheLoop, kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(_OnTheLoop, kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def transport_for(url: str) -> str | None:
    """Celery's ``broker_transport`` for a broker URL: ours for Redis, kombu's choice otherwise."""
    if url.startswith("sentinel://"):
        return f"{__name__}:SentinelTransport"
    if url.startswith(("redis://", "rediss://")):
        return f"{__name__}:Transport"
    return None
