"""The Lua that keeps a batch's counts as its rows move, shared by every status-changing script.

It lives apart from both stores because both include it: the notification store's scripts move
rows (claim, settle, receipt, cancel), the batch store's move whole batches.
"""

from __future__ import annotations

from notifier.stores.slots import SHARD_LUA, in_shard

# Each shard's schedule: ids (and the members below) scored by when they are due.
SCHEDULED = "scheduled"
# Each shard's notifications whose message should be on the queue (queued, retrying), scored
# by when they became so: what dispatch_due looks at to put back a message a failover lost
# (see notifier.tasks.schedule.requeue_lost).
OPEN = "open"
# Members of the schedule that are not notifications: a batch to fan out at its send_at, and
# a finished batch whose client is told so by callback (dispatch_due handles both).
FAN_OUT_MEMBER = "batch:"
DONE_MEMBER = "batch-done:"


def scheduled_key(identifier: str) -> str:
    """The schedule of the shard a notification or batch id is in."""
    return in_shard(identifier, SCHEDULED)


def open_key(notification_id: str) -> str:
    """The open index of the shard a notification is in."""
    return in_shard(notification_id, OPEN)


def member_id(member: str) -> str:
    """The notification or batch id a schedule member stands for."""
    for prefix in (FAN_OUT_MEMBER, DONE_MEMBER):
        if member.startswith(prefix):
            return member.removeprefix(prefix)
    return member


# Lua functions the notification store's scripts (and this store's) include. ``batch_moved``
# keeps a batch row's batch counts as the row goes from ``old`` to ``new``; the batch is done
# when every row is final (its rows leave its client's pending allowance the next time the client
# asks for one: see BatchStore.take_pending), and its callback, if the client wants callbacks, is
# put on the schedule, due at once. A row's batch is found from its record, so its keys are not
# in KEYS; they hash to the record's slot all the same (rows are in their batch's shard: see
# notifier.stores.slots).
BATCH_COUNTS = (
    SHARD_LUA
    + f"""
local function batch_done(key, batch, now)
  if redis.call('HSETNX', key, 'done_at', now) == 0 then return end
  redis.call('HSET', key, 'updated_at', now)
  if redis.call('HGET', key, 'callback') == '1' then
    -- Due now (Redis's clock): dispatch_due queues it within a second.
    redis.call('ZADD', in_shard(batch, '{SCHEDULED}'), redis.call('TIME')[1], '{DONE_MEMBER}' .. batch)
  end
end

-- Rows became final: the batch (its content and rows too) is kept its retention from now on,
-- however long its rows took; done when the last is final.
local function batch_final(key, batch, rows, now)
  local ttl = redis.call('HGET', key, 'ttl')
  for _, k in ipairs({{key, in_shard(batch, 'bc:' .. batch), in_shard(batch, 'br:' .. batch)}}) do
    redis.call('EXPIRE', k, ttl)
  end
  local final = redis.call('HINCRBY', key, 'final', rows)
  if final >= tonumber(redis.call('HGET', key, 'total')) then batch_done(key, batch, now) end
end

local function open_moved(record, new)
  local id = redis.call('HGET', record, 'id')
  if new == 'queued' or new == 'retrying' or new == 'sending' then
    redis.call('ZADD', in_shard(id, '{OPEN}'), redis.call('TIME')[1], id)
  else
    redis.call('ZREM', in_shard(id, '{OPEN}'), id)
  end
end

-- Every status change of a record passes here: the open index follows it, and a batch row's
-- batch counts.
local function batch_moved(record, old, new, now)
  if old == new then return end
  open_moved(record, new)
  local batch = redis.call('HGET', record, 'batch')
  if not batch then return end
  local key = in_shard(batch, 'b:' .. batch)
  if redis.call('EXISTS', key) == 0 then return end
  redis.call('HINCRBY', key, 'c:' .. old, -1)
  redis.call('HINCRBY', key, 'c:' .. new, 1)
  redis.call('HSET', key, 'updated_at', now)
  -- Final once: a late settle of a row another claim already ended moves it, but counts once.
  local was_final = old == 'sent' or old == 'failed' or old == 'cancelled' or old == 'delivered'
    or old == 'undelivered' or old == 'suppressed'
  if not was_final and (new == 'sent' or new == 'failed' or new == 'cancelled'
                        or new == 'suppressed') then
    batch_final(key, batch, 1, now)
  end
end

local function batch_cancelled(record)
  local batch = redis.call('HGET', record, 'batch')
  return batch and redis.call('HGET', in_shard(batch, 'b:' .. batch), 'cancelled') == '1'
end
"""
)
