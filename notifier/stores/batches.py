"""Batches kept in Redis: the batch and its counts, its content, its rows, its fan-out cursor.

Keys (``<id>`` is the batch id, ``{s}`` the hash tag of its shard: see
:mod:`notifier.stores.slots`; its rows are notifications in the same shard):

* ``notifier:{s}:b:<id>``  hash: the batch (client, total, reference, times), its counts per
  status (``c:<status>``), how many rows are final (``final``), how many rows are fanned out
  (``fanned``; ``published`` with a broker other than this Redis), ``cancelled``, ``done_at``;
* ``notifier:{s}:bc:<id>`` JSON: what every row shares (sender, template, subject, text, html);
* ``notifier:{s}:br:<id>`` hash: the rows, ``CHUNK`` to a field, as JSON ``[to, data, reference]``;
* ``notifier:batch_pending:<client>`` rows of the client's batches that were not done when it
  last asked for an allowance.

A row becomes a notification of its own when the batch is fanned out, with an id derived from
the batch id and its index (in the batch's shard), so a fan-out that dies half-way and starts
again makes the same notifications. The counts move in the same Lua step as the row's status (see
:data:`BATCH_COUNTS`, which the notification store's scripts include), so reading them is one
``HGETALL`` however large the batch.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import Redis
from redis.typing import EncodableT, FieldT

from notifier.schemas import MAX_SCHEDULE_AHEAD, Batch, BatchItem
from notifier.stores.batch_counts import BATCH_COUNTS, FAN_OUT_MEMBER, scheduled_key
from notifier.stores.notifications import payload_key, record_fields, record_key
from notifier.stores.slots import SHARD_LUA, in_shard, shard
from notifier.timestamps import rfc3339

CHUNK = 500  # rows fanned out in one Redis step, and kept in one field
STATUSES = ("scheduled", "queued", "sending", "retrying", "sent", "delivered", "undelivered",
            "failed", "cancelled", "suppressed")  # fmt: skip


def batch_key(batch_id: str) -> str:
    return in_shard(batch_id, f"b:{batch_id}")


def _content_key(batch_id: str) -> str:
    return in_shard(batch_id, f"bc:{batch_id}")


def _rows_key(batch_id: str) -> str:
    return in_shard(batch_id, f"br:{batch_id}")


def _pending_key(client: str) -> str:
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
# looks at them before this step: a batch only ever becomes done or gone, never back, so what
# it saw still holds, and an entry it did not see is counted.
_TAKE_PENDING = """
local now = tonumber(redis.call('TIME')[1])
local finished = {}
for i = 5, #ARGV do finished[ARGV[i]] = true end
local held = redis.call('HGETALL', KEYS[1])
local pending = 0
for i = 1, #held, 2 do
  if held[i] == ARGV[1] then return 1 end
  local rows, since = string.match(held[i + 1], '^(%d+):(%d+)$')
  -- A batch being stored right now has no hash yet: only an old entry without one is gone.
  if finished[held[i]] or (finished[held[i] .. ' gone'] and now - tonumber(since) > 300) then
    redis.call('HDEL', KEYS[1], held[i])
  else
    pending = pending + tonumber(rows)
  end
end
if pending + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. now)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS: batch, list of the row messages, then a record and a payload key per row.
# ARGV: fanned before, fanned after, ttl, now, the fields every row's record shares (JSON,
# flat), then per row: id, reference, payload, message ('' to publish after).
# Makes one chunk of rows into notifications, if no one has yet: the cursor moves in the same
# step, so a chunk is made once, whoever runs it. The batch leaves 'scheduled' with its first.
# A row joins the open index of its shard (the batch's, but for a batch made before rows were).
_FAN_OUT = (
    SHARD_LUA
    + """
if redis.call('HGET', KEYS[1], 'cancelled') == '1' then return -1 end
if redis.call('HGET', KEYS[1], 'fanned') ~= ARGV[1] then return 0 end
local scheduled = tonumber(redis.call('HGET', KEYS[1], 'c:scheduled') or '0')
if redis.call('HGET', KEYS[1], 'state') == 'scheduled' then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'c:scheduled', 0, 'updated_at', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'c:queued', scheduled)
end
local common = cjson.decode(ARGV[5])
local rows = (#ARGV - 5) / 4
for i = 0, rows - 1 do
  local a = 6 + 4 * i
  local record, payload = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  redis.call('HSET', record, 'id', ARGV[a], 'reference', ARGV[a + 1], unpack(common))
  redis.call('EXPIRE', record, ARGV[3])
  redis.call('SET', payload, ARGV[a + 2], 'EX', ARGV[3])
  redis.call('ZADD', in_shard(ARGV[a], 'open'), redis.call('TIME')[1], ARGV[a])
  if ARGV[a + 3] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[a + 3]) end
end
redis.call('HSET', KEYS[1], 'fanned', ARGV[2])
return 1
"""
)

# KEYS: batch, schedule. ARGV: batch id, now. Cancels a batch: its rows not yet fanned out are
# cancelled here (counted, never made); those that are, the caller cancels one by one, and the
# claim of a row of a cancelled batch cancels it too. {outcome, rows fanned out, client}: 'done'
# when it is too late, else 'cancelled'.
_CANCEL = (
    BATCH_COUNTS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', 0, ''} end
local client = redis.call('HGET', KEYS[1], 'client')
if redis.call('HGET', KEYS[1], 'done_at') and redis.call('HGET', KEYS[1], 'cancelled') ~= '1' then
  return {'done', 0, client}
end
local fanned = tonumber(redis.call('HGET', KEYS[1], 'fanned'))
if redis.call('HGET', KEYS[1], 'cancelled') == '1' then return {'cancelled', fanned, client} end
redis.call('HSET', KEYS[1], 'cancelled', '1', 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[2], '"""
    + FAN_OUT_MEMBER
    + """' .. ARGV[1])
local rest = tonumber(redis.call('HGET', KEYS[1], 'total')) - fanned
if rest > 0 then
  local state = redis.call('HGET', KEYS[1], 'state')
  redis.call('HINCRBY', KEYS[1], 'c:' .. state, -rest)
  redis.call('HINCRBY', KEYS[1], 'c:cancelled', rest)
  batch_final(KEYS[1], ARGV[1], rest, ARGV[2])
end
return {'cancelled', fanned, client}
"""
)


@dataclass(frozen=True)
class Chunk:
    """Rows of a batch to make into notifications: ``start`` is the index of the first."""

    start: int
    rows: list[tuple[str, dict[str, Any], str | None]]


class BatchStore:
    """Create, read, fan out and cancel batches in Redis."""

    def __init__(self, redis: Redis, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl
        self._take_pending = redis.register_script(_TAKE_PENDING)
        self._fan_out = redis.register_script(_FAN_OUT)
        self._cancel = redis.register_script(_CANCEL)
        # Never makes a batch hash that is gone (expired) again, with nothing but this field.
        self._published = redis.register_script(
            "if redis.call('EXISTS', KEYS[1]) == 1 then"
            " redis.call('HSET', KEYS[1], 'published', ARGV[1]) end"
        )

    def take_pending(self, client: str, batch_id: str, rows: int, limit: int) -> bool:
        """Count the batch's ``rows`` against the client's rows in unfinished batches; False
        when that would pass ``limit``. Safe to repeat: a batch is counted once."""
        # Kept past the longest a batch can live: scheduled 30 days ahead, then its retention.
        ttl = self.ttl + int(MAX_SCHEDULE_AHEAD.total_seconds())
        held = [str(b) for b in self.redis.hkeys(_pending_key(client))]
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
        taken = self._take_pending(keys=[_pending_key(client)], args=args)
        return int(taken) > 0

    def give_back(self, client: str, batch_id: str) -> None:
        """Undo :meth:`take_pending` for a batch that was not accepted."""
        self.redis.hdel(_pending_key(client), batch_id)

    def create(
        self,
        *,
        batch_id: str,
        client: str,
        content: dict[str, Any],
        rows: Sequence[tuple[str, dict[str, Any], str | None]],
        send_at: float | None,
        reference: str | None,
        test: bool,
        callback: bool,
        push: tuple[str, str] | None = None,
    ) -> Batch:
        """Store a batch, its content and its rows in one transaction: queued or scheduled.

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
        }
        chunks: dict[FieldT, EncodableT] = {
            str(start // CHUNK): json.dumps(rows[start : start + CHUNK], separators=(",", ":"))
            for start in range(0, len(rows), CHUNK)
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(batch_key(batch_id), mapping=fields)
            pipe.set(_content_key(batch_id), json.dumps(content), ex=ttl)
            pipe.hset(_rows_key(batch_id), mapping=chunks)
            for key in (batch_key(batch_id), _rows_key(batch_id)):
                pipe.expire(key, ttl)
            if send_at is not None:
                pipe.zadd(scheduled_key(batch_id), {FAN_OUT_MEMBER + batch_id: send_at})
            if push is not None:
                pipe.lpush(*push)
            pipe.execute()
        return _batch({str(k): str(v) for k, v in fields.items()})

    def discard(self, batch_id: str) -> None:
        """Forget a batch that was never accepted (its fan-out could not be queued)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(batch_key(batch_id), _content_key(batch_id), _rows_key(batch_id))
            pipe.zrem(scheduled_key(batch_id), FAN_OUT_MEMBER + batch_id)
            pipe.execute()

    def get(self, batch_id: str) -> Batch | None:
        """The batch with its counts, or None when unknown or expired."""
        fields = cast(dict[str, str], self.redis.hgetall(batch_key(batch_id)))
        return _batch(fields) if "total" in fields else None

    def content(self, batch_id: str) -> dict[str, Any] | None:
        """What every row of the batch shares, or None once expired."""
        raw = cast(str | None, self.redis.get(_content_key(batch_id)))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    def cursor(self, batch_id: str) -> tuple[int, int, bool]:
        """How many rows are fanned out, how many of those published, and if it is cancelled."""
        fanned, published, cancelled = cast(
            list[str | None],
            self.redis.hmget(batch_key(batch_id), "fanned", "published", "cancelled"),
        )
        return int(fanned or 0), int(published or 0), cancelled == "1"

    def chunk(self, batch_id: str, start: int) -> Chunk | None:
        """The chunk of rows that starts at row ``start``, or None past the last."""
        raw = cast(str | None, self.redis.hget(_rows_key(batch_id), str(start // CHUNK)))
        if raw is None:
            return None
        rows = [(str(to), dict(data), ref) for to, data, ref in json.loads(raw)]
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
            client=batch.client, kind="mail", status="queued", now=now, test=batch.test,
            queued_at=moment, extra={"batch": batch.id},
        )  # fmt: skip
        keys: list[str] = [batch_key(batch.id), queue]
        args: list[str | int] = [
            chunk.start, chunk.start + len(chunk.rows), self.ttl, now,
            json.dumps([v for pair in common.items() for v in pair]),
        ]  # fmt: skip
        for notification_id, (_, _, reference), payload, message in zip(
            ids, chunk.rows, payloads, messages, strict=True
        ):
            keys += [record_key(notification_id), payload_key(notification_id)]
            args += [notification_id, reference or "", payload, message]
        return int(self._fan_out(keys=keys, args=args))

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

    def page(
        self, batch: Batch, *, status: str | None, start: int, limit: int, scan: int
    ) -> tuple[list[BatchItem], int | None]:
        """Up to ``limit`` rows from row ``start`` on, of ``status`` if given, looking at no more
        than ``scan`` rows; the items and where the next page starts (None at the end)."""
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
            found += self._rows(batch.id, index, upto, fanned, unmade, status)
            index = upto
        if len(found) > limit:
            index = found[limit][0]  # the next page starts at the first row past this one
        items = [item for _, item in found[:limit]]
        return items, (index if index < batch.total else None)

    def _rows(
        self, batch_id: str, start: int, end: int, fanned: int, unmade: str, status: str | None
    ) -> list[tuple[int, BatchItem]]:
        """Rows ``start`` to ``end`` (within one chunk) of ``status``, with their indexes."""
        ids = [row_id(batch_id, i) for i in range(start, end)]
        with self.redis.pipeline(transaction=False) as pipe:
            for notification_id in ids[: max(0, fanned - start)]:
                pipe.hmget(record_key(notification_id), "status", "reference", "error")
            made = cast(list[list[str | None]], pipe.execute())
        chunk = self.chunk(batch_id, start) if len(made) < len(ids) else None
        items: list[tuple[int, BatchItem]] = []
        for offset, notification_id in enumerate(ids):
            index = start + offset
            if offset < len(made):
                row_status, reference, error = made[offset]
                if row_status is None:
                    continue  # expired
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


def _batch(fields: dict[str, str]) -> Batch:
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
        status=status,
        total=total,
        counts={s: n for s, n in counts.items() if n},
        reference=fields.get("reference") or None,
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
        send_at=fields.get("send_at") or None,
    )
