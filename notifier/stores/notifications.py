"""Notifications kept in Redis: a status record, the payload to send, and the schedule.

Keys (``<id>`` is the notification id, ``{s}`` the hash tag of its shard, one of 16: see
:mod:`notifier.stores.slots`):

* ``notifier:{s}:n:<id>``  hash, the status record the API shows;
* ``notifier:{s}:p:<id>``  JSON payload (recipients, rendered bodies), deleted once final;
* ``notifier:{s}:scheduled`` sorted set of the shard's scheduled ids, scored by due time;
* ``notifier:{s}:open`` sorted set of the shard's ids whose message should be on a queue or
  in a worker's hands (queued, retrying, sending), scored by when to look for it as lost;
* ``notifier:{s}:dispatched_at`` when the shard's schedule was last looked at (a dead beat
  shows as its age);
* ``notifier:{s}:metrics`` hash of counters: attempts and final statuses (live or test
  traffic), provider errors, callbacks, receipts, and the latency histograms (see
  :mod:`notifier.stores.latency`); /metrics adds up the shards';
* ``notifier:ref:<provider>:<ref>`` the notification a provider's message id belongs to;
* ``notifier:receipt:<provider>:<ref>`` a receipt that came before its send was recorded.

Every status change is one Lua script on one slot, so two workers cannot both move a record. The
provider-ref index is keyed by the provider's id, not ours, so it is written beside the script,
not in it (see :meth:`NotificationStore.settle`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from redis import Redis
from redis.typing import EncodableT, FieldT

from notifier.queueing import Enqueuer
from notifier.redact import redact
from notifier.redisconn import Replication
from notifier.schemas import Notification
from notifier.stores.batch_counts import (
    BATCH_COUNTS,
    OPEN,
    SCHEDULED,
    member_id,
    open_key,
    scheduled_key,
)
from notifier.stores.latency import OBSERVE_LUA, QUEUED_AT
from notifier.stores.slots import SHARDS, every_shard, in_shard, shard_key
from notifier.timestamps import rfc3339

DISPATCHED_AT = "dispatched_at"
# Counters kept in Redis, so every worker on every machine adds to one total (see metrics.py):
# each shard's, moved in the same step as its records; /metrics adds them up.
METRICS = "metrics"
# "suppressed": not sent, the address being on the client's suppression list.
FINAL = ("sent", "failed", "cancelled", "suppressed")
# A provider's delivery receipt moves a sent notification on, once, to one of these.
RECEIPT_STATUSES = ("delivered", "undelivered")
# What a client's status callback is sent for.
CALLBACK_STATUSES = frozenset((*FINAL, *RECEIPT_STATUSES))
# Statuses a receipt can find a record in before its send is recorded.
OPEN_STATUSES = ("scheduled", "queued", "sending", "retrying")
# A receipt that comes before its send was recorded waits this long for it.
EARLY_RECEIPT_TTL = 3600
T = TypeVar("T")


def record_key(notification_id: str) -> str:
    return in_shard(notification_id, f"n:{notification_id}")


def payload_key(notification_id: str) -> str:
    return in_shard(notification_id, f"p:{notification_id}")


def metrics_key(identifier: str) -> str:
    """The counters of the shard ``identifier`` (a notification or batch id) is in."""
    return in_shard(identifier, METRICS)


def metrics_keys() -> list[str]:
    """Every shard's counters: /metrics adds them up."""
    return every_shard(METRICS)


def dispatched_at_keys() -> list[str]:
    """When each shard's schedule was last looked at."""
    return every_shard(DISPATCHED_AT)


def record_fields(
    *,
    client: str,
    kind: str,
    status: str,
    now: str,
    test: bool,
    send_at: str | None = None,
    queued_at: float | None = None,
    extra: dict[FieldT, EncodableT] | None = None,
) -> dict[FieldT, EncodableT]:
    """The fields of a new record but its id and reference, as the store's hash keeps them;
    ``queued_at``, when its message goes on its lane now (Unix time)."""
    fields: dict[FieldT, EncodableT] = {
        "client": client, "kind": kind, "status": status, "attempts": "0", "provider": "",
        "error": "", "created_at": now, "updated_at": now, "send_at": send_at or "",
        "provider_ref": "", "test_code": "", **(extra or {}),
    }  # fmt: skip
    if test:
        fields["mode"] = "test"  # counted apart in /metrics; never shown
    if queued_at is not None:
        fields[QUEUED_AT] = repr(queued_at)  # where its latency histograms start; never shown
    return fields


# The kinds the API shows (the contract's: mail, sms_captcha) of those the store keeps apart:
# a code by mail is a mail.
SHOWN_KIND = {"mail_captcha": "mail"}


def _record(fields: dict[str, str]) -> Notification:
    # Built without validation: the store wrote these fields itself.
    return Notification.model_construct(
        id=fields["id"],
        client=fields["client"],
        kind=SHOWN_KIND.get(fields["kind"], fields["kind"]),
        status=fields["status"],
        attempts=int(fields.get("attempts", 0)),
        provider=fields.get("provider") or None,
        error=fields.get("error") or None,
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
        send_at=fields.get("send_at") or None,
        reference=fields.get("reference") or None,
        provider_ref=fields.get("provider_ref") or None,
        test_code=fields.get("test_code") or None,
    )


def _ref_key(provider: str, ref: str) -> str:
    return f"notifier:ref:{provider}:{ref}"


def _early_receipt_key(provider: str, ref: str) -> str:
    return f"notifier:receipt:{provider}:{ref}"


def _list_of(callback: tuple[str, str] | None) -> list[str]:
    """The callback list a script pushes the message to, as its last key: none without one."""
    return [callback[0]] if callback and callback[0] else []


# KEYS: record, payload, metrics. ARGV: now (RFC 3339), now (s), lease (s), max attempts, claim,
# lane ('' when not known). A first attempt's wait in its lane goes in the queue_wait histogram.
# Moves a live record to 'sending', counts the attempt, and returns the payload with it. A record already 'sending' under an
# unexpired lease belongs to a task still running: 'busy', with the seconds the lease has left; unless
# it is this claim's own, made again (its answer was lost with a primary): then the same answer.
# One past max attempts (its workers died on it) fails instead of looping forever.
_CLAIM = (
    BATCH_COUNTS
    + OBSERVE_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0, '0'} end
if status ~= 'scheduled' and status ~= 'queued' and status ~= 'sending' and status ~= 'retrying' then
  return {status, 0, '0'}
end
local now = tonumber(ARGV[2])
if status == 'sending' then
  if redis.call('HGET', KEYS[1], 'claim') == ARGV[5] then
    return {'sending', tonumber(redis.call('HGET', KEYS[1], 'attempts')), '0', redis.call('GET', KEYS[2])}
  end
  local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
  if lease > now then return {'busy', 0, tostring(lease - now)} end
end
if batch_cancelled(KEYS[1]) then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1])
  redis.call('DEL', KEYS[2])
  redis.call('HINCRBY', KEYS[3], 'final:' .. redis.call('HGET', KEYS[1], 'kind') .. ':cancelled' .. (redis.call('HGET', KEYS[1], 'mode') == 'test' and ':test' or ':live'), 1)
  batch_moved(KEYS[1], status, 'cancelled', ARGV[1])
  return {'cancelled', -1, '0'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'updated_at', ARGV[1],
             'error', 'gave up after ' .. attempts .. ' attempts that did not finish')
  redis.call('DEL', KEYS[2])
  redis.call('HINCRBY', KEYS[3], 'final:' .. redis.call('HGET', KEYS[1], 'kind') .. ':failed' .. (redis.call('HGET', KEYS[1], 'mode') == 'test' and ':test' or ':live'), 1)
  batch_moved(KEYS[1], status, 'failed', ARGV[1])
  return {'failed', attempts, '0'}
end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'sending', 'updated_at', ARGV[1],
           'lease_until', tostring(now + tonumber(ARGV[3])), 'claim', ARGV[5])
batch_moved(KEYS[1], status, 'sending', ARGV[1])
redis.call('HINCRBY', KEYS[3], 'attempts:' .. redis.call('HGET', KEYS[1], 'kind') .. (redis.call('HGET', KEYS[1], 'mode') == 'test' and ':test' or ':live'), 1)
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'lane', ARGV[6])
  local queued_at = tonumber(redis.call('HGET', KEYS[1], 'queued_at') or '')
  if attempts == 1 and queued_at then
    observe(KEYS[3], 'queue_wait', ARGV[6], redis.call('HGET', KEYS[1], 'kind'), now - queued_at)
  end
end
return {'sending', attempts, '0', redis.call('GET', KEYS[2])}
"""
)

# KEYS: record, payload, metrics, callback list (if any).
# ARGV: status, provider, error, now, ttl, final (1/0), only if open (1/0), provider ref,
# callback message, callback clients (" a b "), claim (the attempt's, or ''), now (s). A row of a cancelled batch that would retry is
# cancelled instead ('revoked'). Counts final statuses and provider errors for
# /metrics; keeps the provider ref. Returns {moved, callback due, revoked}: a callback message is
# pushed here, in the same step as the status, when the
# client wants callbacks; without a message (another broker) 'callback due' says to publish. An
# attempt's outcome is recorded once: made again (its answer was lost with a primary), nothing moves.
# A live send a provider took goes in the delivery histogram, under the lane it was claimed from.
_SETTLE = (
    BATCH_COUNTS
    + OBSERVE_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, 0, 0} end
if ARGV[11] ~= '' and redis.call('HGET', KEYS[1], 'settled') == ARGV[11] then
  return {0, 0, 0}
end
if ARGV[7] == '1' and status ~= 'scheduled' and status ~= 'queued' and status ~= 'sending'
   and status ~= 'retrying' then
  return {0, 0, 0}
end
if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'settled', ARGV[11]) end
-- A row of a cancelled batch is not retried: cancelled instead (the caller tells the client).
local new, final, revoked = ARGV[1], ARGV[6], 0
if new == 'retrying' and batch_cancelled(KEYS[1]) then new, final, revoked = 'cancelled', '1', 1 end
redis.call('HSET', KEYS[1], 'status', new, 'provider', ARGV[2], 'error', ARGV[3],
           'updated_at', ARGV[4])
batch_moved(KEYS[1], status, new, ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if final == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('HINCRBY', KEYS[3], 'final:' .. redis.call('HGET', KEYS[1], 'kind') .. ':' .. new .. (redis.call('HGET', KEYS[1], 'mode') == 'test' and ':test' or ':live'), 1)
end
if ARGV[3] ~= '' and ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[3], 'provider_errors:' .. ARGV[2], 1)
end
if new == 'sent' and ARGV[2] ~= '' then
  local seen = redis.call('HMGET', KEYS[1], 'lane', 'queued_at', 'kind', 'mode')
  local queued_at = tonumber(seen[2] or '')
  if seen[1] and queued_at and seen[4] ~= 'test' then
    observe(KEYS[3], 'delivery', seen[1], seen[3], tonumber(ARGV[12]) - queued_at)
  end
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'provider_ref', ARGV[8]) end
local due = 0
if revoked == 0 and ARGV[6] == '1' and string.find(ARGV[10], ' ' .. redis.call('HGET', KEYS[1], 'client') .. ' ', 1, true) then
  due = 1
  if ARGV[9] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[9]) end
end
return {1, due, revoked}
"""
)

# KEYS: record, metrics, callback list (if any). ARGV: status, error, now, ttl, provider,
# callback message, callback clients. A receipt moves a 'sent' record to delivered or
# undelivered, once: never backwards, never from one receipt status to the other.
_RECEIPT = (
    BATCH_COUNTS
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
if status ~= 'sent' then return {status, 0} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'error', ARGV[2], 'updated_at', ARGV[3])
batch_moved(KEYS[1], 'sent', ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'receipts:' .. ARGV[5] .. ':' .. ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], 'final:' .. redis.call('HGET', KEYS[1], 'kind') .. ':' .. ARGV[1] .. (redis.call('HGET', KEYS[1], 'mode') == 'test' and ':test' or ':live'), 1)
local due = 0
if string.find(ARGV[7], ' ' .. redis.call('HGET', KEYS[1], 'client') .. ' ', 1, true) then
  due = 1
  if ARGV[6] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[6]) end
end
return {'moved', due}
"""
)

# KEYS: record, payload, schedule, metrics, callback list (if any). ARGV: id, now, callback message,
# callback clients, the statuses it may cancel (" scheduled "). Cancels a record still in one.
_CANCEL = (
    BATCH_COUNTS
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(ARGV[5], ' ' .. status .. ' ', 1, true) then
  return {status or false, 0}
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[2])
batch_moved(KEYS[1], status, 'cancelled', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HINCRBY', KEYS[4], 'final:' .. redis.call('HGET', KEYS[1], 'kind') .. ':cancelled' .. (redis.call('HGET', KEYS[1], 'mode') == 'test' and ':test' or ':live'), 1)
local due = 0
if string.find(ARGV[4], ' ' .. redis.call('HGET', KEYS[1], 'client') .. ' ', 1, true) then
  due = 1
  if ARGV[3] ~= '' then redis.call('LPUSH', KEYS[5], ARGV[3]) end
end
return {status, due}
"""
)

# KEYS: schedule, dispatched-at. ARGV: now, lease until, limit. Leases due ids: they come due
# again at 'lease until' unless dispatched first, so a dispatcher that dies loses nothing. Stamps
# the run, so /metrics shows when dispatch stopped even while nothing is due.
_LEASE_DUE = """
redis.call('SET', KEYS[2], ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""

# KEYS: record, schedule, open index. ARGV: member, now, id, now (s). The message is on the
# queue: off the schedule, and its latency histograms start now.
_DISPATCHED = """
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'scheduled' then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'updated_at', ARGV[2], 'queued_at', ARGV[4])
  redis.call('ZADD', KEYS[3], redis.call('TIME')[1], ARGV[3])
end
return 1
"""


@dataclass(frozen=True)
class Claim:
    """What a claim came to: ``sending`` (attempt number ``attempt``), ``busy`` (another
    task holds it for ``wait`` more seconds), or the status that leaves nothing to do."""

    status: str
    attempt: int = 0
    wait: float = 0.0
    payload: dict[str, Any] | None = None  # what to send, with a ``sending`` claim


class NotificationStore:
    """Create, read and move notifications in Redis."""

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
    ) -> None:
        self.redis = redis
        self.ttl = ttl
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
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self._receipt = redis.register_script(_RECEIPT)
        self._cancel = redis.register_script(_CANCEL)
        self._lease_due = redis.register_script(_LEASE_DUE)
        self._dispatched = redis.register_script(_DISPATCHED)

    def create(
        self,
        *,
        notification_id: str,
        client: str,
        kind: str,
        payload: dict[str, Any],
        send_at: float | None = None,
        push: tuple[str, str] | None = None,
        reference: str | None = None,
        test: bool = False,
    ) -> Notification:
        """Store a new record and its payload in one transaction: queued, or scheduled.

        ``push`` is a (list, message) to LPUSH in the same transaction: the task's message,
        when the broker is this Redis.
        """
        now = time.time()
        stamp = rfc3339(now)
        when = None if send_at is None else rfc3339(send_at)
        status = "queued" if send_at is None else "scheduled"
        fields: dict[FieldT, EncodableT] = {
            "id": notification_id,
            "reference": reference or "",
            # A scheduled one's message goes on its lane when it is dispatched.
            **record_fields(
                client=client,
                kind=kind,
                status=status,
                now=stamp,
                test=test,
                send_at=when,
                queued_at=now if send_at is None else None,
            ),
        }
        record = Notification.model_construct(
            id=notification_id, client=client, kind=kind, status=status, attempts=0,
            provider=None, error=None, created_at=stamp, updated_at=stamp, send_at=when,
            reference=reference, provider_ref=None,
        )  # fmt: skip
        # A scheduled record must outlive its wait as well as the usual retention.
        ttl = self.ttl + max(0, int((send_at or now) - now))
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(record_key(notification_id), mapping=fields)
            pipe.expire(record_key(notification_id), ttl)
            pipe.set(payload_key(notification_id), json.dumps(payload), ex=ttl)
            if send_at is not None:
                pipe.zadd(scheduled_key(notification_id), {notification_id: send_at})
            else:
                pipe.zadd(open_key(notification_id), {notification_id: int(now)})
            if push is not None:
                pipe.lpush(*push)
            pipe.execute()
        return record

    def discard(self, notification_id: str) -> None:
        """Forget a notification that was never accepted (its message could not be queued)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(record_key(notification_id), payload_key(notification_id))
            pipe.zrem(scheduled_key(notification_id), notification_id)
            pipe.zrem(open_key(notification_id), notification_id)
            pipe.execute()

    def get(self, notification_id: str) -> Notification | None:
        """The record, or None when unknown or expired."""
        fields = cast(dict[str, str], self.redis.hgetall(record_key(notification_id)))
        return _record(fields) if fields else None

    def client_of(self, notification_id: str) -> str | None:
        """Whose the notification is (for a payload from before payloads named it)."""
        return cast(str | None, self.redis.hget(record_key(notification_id), "client"))

    def payload(self, notification_id: str) -> dict[str, Any] | None:
        """The payload to send, or None once the notification is final or expired."""
        raw = cast(str | None, self.redis.get(payload_key(notification_id)))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    def claim(
        self, notification_id: str, *, lease: float, max_attempts: int, lane: str = ""
    ) -> Claim:
        """Move the record to ``sending`` for ``lease`` seconds, if no one else holds it.

        ``lane`` is the queue its message came on: the label of its latency histograms (none
        are kept for a claim without one).
        """
        now = time.time()
        claim = uuid.uuid4().hex
        keys = [
            record_key(notification_id),
            payload_key(notification_id),
            metrics_key(notification_id),
        ]
        status, attempt, wait, *payload = self._durably(
            lambda: self._claim(
                keys=keys, args=[rfc3339(now), now, lease, max_attempts, claim, lane]
            )
        )
        self._held.claim = (notification_id, claim)
        raw = payload[0] if payload else None
        if status == "failed" and int(attempt) > 0:
            # This claim gave it up (its attempts never finished): the client hears of it too.
            self._tell(notification_id, "failed")
        elif status == "cancelled" and int(attempt) < 0:
            # A row of a cancelled batch, cancelled by this claim.
            self._tell(notification_id, "cancelled")
            attempt = 0
        return Claim(
            status=str(status),
            attempt=int(attempt),
            wait=float(wait),
            payload=None if raw is None else cast(dict[str, Any], json.loads(raw)),
        )

    def settle(
        self,
        notification_id: str,
        status: str,
        *,
        provider: str | None,
        error: str | None = None,
        only_if_open: bool = False,
        provider_ref: str | None = None,
    ) -> bool:
        """Record the outcome of an attempt: ``sent``, ``failed`` or ``retrying``; True when a
        ``retrying`` became ``cancelled`` instead (its batch was cancelled meanwhile).

        A final status queues the client's status callback in the same step. With
        ``provider_ref`` (the provider's message id), a receipt can find the notification; one
        that came before this, early, is applied now.
        """
        final = status in FINAL
        now = time.time()
        callback = self._callback(notification_id, status) if final else None
        # The outcome of this thread's claim carries it, once: made again, it changes nothing.
        held = getattr(self._held, "claim", None)
        claim = held[1] if held and held[0] == notification_id else ""
        if claim:
            self._held.claim = None
        keys = [
            record_key(notification_id), payload_key(notification_id),
            metrics_key(notification_id), *_list_of(callback),
        ]  # fmt: skip
        args = [
            # Provider errors can quote an address or a number back: never keep them.
            status, provider or "", redact(error or ""), rfc3339(now), self.ttl,
            "1" if final else "0", "1" if only_if_open else "0", provider_ref or "",
            callback[1] if callback else "", self._callback_clients, claim, now,
        ]  # fmt: skip

        def write() -> tuple[int, int, str | None]:
            # One round trip. With the provider's id: indexed before the status moves (a worker
            # that dies in between leaves it indexed; its redelivered task finds the record
            # final and stops), and a receipt that came first, kept under it, read after. Each
            # side writes its key, then reads the other's, so one at least sees the other.
            indexed = bool(provider and provider_ref)
            with self.redis.pipeline(transaction=False) as pipe:
                if indexed:
                    pipe.set(_ref_key(provider or "", provider_ref or ""), notification_id,
                             ex=self.ttl)  # fmt: skip
                self._settle(keys=keys, args=args, client=pipe)
                if indexed:
                    pipe.get(_early_receipt_key(provider or "", provider_ref or ""))
                answers = pipe.execute()
            _, due, revoked = answers[1 if indexed else 0]
            early = answers[-1] if indexed else None
            return int(due), int(revoked), cast(str | None, early)

        due, revoked, early = self._durably(write)
        if status == "retrying" and not revoked:
            # Looked for as lost only once its longest delay is over (see reopened).
            self.reopened(notification_id, after=self.retry_cap)
        self._publish_if_due(notification_id, status, callback, due)
        if revoked:
            self._tell(notification_id, "cancelled")  # its batch was cancelled meanwhile
        if early and provider and provider_ref:
            receipt, _, receipt_error = str(early).partition("|")
            self.receipt(provider, provider_ref, receipt, error=receipt_error or None)
        return bool(revoked)

    def receipt(
        self, provider: str, provider_ref: str, status: str, *, error: str | None = None
    ) -> str:
        """Apply a provider's delivery receipt (``delivered`` or ``undelivered``).

        What it came to: ``moved``; ``early`` (the send is not recorded yet: kept, and applied
        when it is); ``unknown`` (no such message here, or too long ago); or the status that
        leaves nothing to move (``delivered`` twice, ``sent`` never moves back).
        """
        if status not in RECEIPT_STATUSES:
            raise ValueError(f"not a receipt status: {status!r}")
        found = cast(str | None, self.redis.get(_ref_key(provider, provider_ref)))
        if found is None:
            early = _early_receipt_key(provider, provider_ref)
            self.redis.set(early, f"{status}|{error or ''}", ex=EARLY_RECEIPT_TTL)
            # The send may have been recorded in between: look once more.
            found = cast(str | None, self.redis.get(_ref_key(provider, provider_ref)))
            if found is None:
                return "early"
        callback = self._callback(found, status)
        keys = [record_key(found), metrics_key(found), *_list_of(callback)]
        args: list[EncodableT] = [
            status, redact(error or ""), rfc3339(time.time()), self.ttl, provider,
            callback[1] if callback else "", self._callback_clients,
        ]  # fmt: skip
        outcome, due = self._receipt(keys=keys, args=args)
        early = _early_receipt_key(provider, provider_ref)
        if outcome in OPEN_STATUSES:
            # Indexed, but its send not recorded yet (the settle is under way): kept for the
            # settle to apply, then tried once more in case it came in between.
            self.redis.set(early, f"{status}|{error or ''}", ex=EARLY_RECEIPT_TTL)
            outcome, due = self._receipt(keys=keys, args=args)
            if outcome in OPEN_STATUSES:
                return "early"
        self.redis.delete(early)
        self._publish_if_due(found, status, callback, due)
        return "unknown" if outcome == "missing" else str(outcome)

    def cancel(self, notification_id: str) -> str | None:
        """Cancel a scheduled notification; the status it had (``scheduled`` when it worked)."""
        return self.cancel_many([notification_id])[0]

    def cancel_many(
        self,
        ids: Sequence[str],
        statuses: Sequence[str] = ("scheduled",),
        *,
        client: str | None = None,
    ) -> list[str | None]:
        """Cancel each notification still in one of ``statuses``, in one round trip; the
        status each had (one of ``statuses`` where it worked, None when unknown).

        ``client``, when every one is that client's (a batch's rows): no callback message is
        built for a client that wants none.
        """
        allowed = " " + " ".join(statuses) + " "
        wanted = client is None or f" {client} " in self._callback_clients
        callbacks = [self._callback(i, "cancelled") if wanted else None for i in ids]
        now = rfc3339(time.time())
        with self.redis.pipeline(transaction=False) as pipe:
            for notification_id, callback in zip(ids, callbacks, strict=True):
                keys = [
                    record_key(notification_id), payload_key(notification_id),
                    scheduled_key(notification_id), metrics_key(notification_id),
                    *_list_of(callback),
                ]  # fmt: skip
                args = [
                    notification_id, now, callback[1] if callback else "",
                    self._callback_clients, allowed,
                ]  # fmt: skip
                self._cancel(keys=keys, args=args, client=pipe)
            answers = cast(list[list[Any]], pipe.execute())
        for notification_id, callback, (_, due) in zip(ids, callbacks, answers, strict=True):
            self._publish_if_due(notification_id, "cancelled", callback, due)
        return [cast(str | None, before) for before, _ in answers]

    def _durably(self, write: Callable[[], T]) -> T:
        """A worker's write that must outlive the primary: confirmed by its replicas, or made
        again on the one promoted after it (the write is safe to repeat)."""
        return self.replication.durably(self.redis, write, patience=self.patience)

    def show_test_code(self, notification_id: str, code: str) -> None:
        """Show a test key's captcha code in its status record (never done for a live key)."""
        self.redis.hset(record_key(notification_id), "test_code", code)

    def count(self, counter: str) -> None:
        """Add one to a counter of /metrics (e.g. ``callbacks:sent``)."""
        self.redis.hincrby(shard_key(SHARDS[0], METRICS), counter, 1)

    def counted(self, counter: str) -> int:
        """A counter of /metrics: every shard's, added up."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in metrics_keys():
                pipe.hget(key, counter)
            return sum(int(value or 0) for value in pipe.execute())

    def _tell(self, notification_id: str, status: str) -> None:
        """Queue a callback for a status a script reached without one."""
        record = self.get(notification_id)
        if self._callbacks is None or record is None:
            return
        if f" {record.client} " in self._callback_clients:
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
            self._callbacks.publish(
                notification_id, status, f"msg_{uuid.uuid4().hex}", int(time.time())
            )

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

    def reopened(self, notification_id: str, after: float = 0.0) -> None:
        """Its message was put on the queue (again) and is due in ``after`` seconds: looked for
        as lost only some time after that."""
        self.redis.zadd(
            open_key(notification_id), {notification_id: int(time.time() + after)}, xx=True
        )

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
