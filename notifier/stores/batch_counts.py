"""The Lua that keeps a batch's counts as its rows move, shared by every status-changing script.

It lives apart from both stores because both include it: the notification store's scripts move
rows (claim, settle, receipt, cancel), the batch store's move whole batches.
"""

from __future__ import annotations

SCHEDULED = "notifier:scheduled"
# Notifications whose message should be on the queue (queued, retrying), scored by when they
# became so: what dispatch_due looks at to put back a message a failover lost (see
# notifier.tasks.schedule.requeue_lost).
OPEN = "notifier:open"
# Members of the schedule that are not notifications: a batch to fan out at its send_at, and
# a finished batch whose client is told so by callback (dispatch_due handles both).
FAN_OUT_MEMBER = "batch:"
DONE_MEMBER = "batch-done:"

# Lua functions the notification store's scripts (and this store's) include. ``batch_moved``
# keeps a batch row's batch counts as the row goes from ``old`` to ``new``; the batch is done
# when every row is final: its rows leave its client's pending allowance, and its callback, if the
# client wants callbacks, is put on the schedule, due at once.
BATCH_COUNTS = f"""
local function batch_done(key, batch, now)
  if redis.call('HSETNX', key, 'done_at', now) == 0 then return end
  redis.call('HSET', key, 'updated_at', now)
  redis.call('HDEL', 'notifier:batch_pending:' .. redis.call('HGET', key, 'client'), batch)
  if redis.call('HGET', key, 'callback') == '1' then
    -- Due now (Redis's clock): dispatch_due queues it within a second.
    redis.call('ZADD', '{SCHEDULED}', redis.call('TIME')[1], '{DONE_MEMBER}' .. batch)
  end
end

-- Rows became final: the batch (its content and rows too) is kept its retention from now on,
-- however long its rows took; done when the last is final.
local function batch_final(key, batch, rows, now)
  local ttl = redis.call('HGET', key, 'ttl')
  for _, k in ipairs({{key, 'notifier:bc:' .. batch, 'notifier:br:' .. batch}}) do
    redis.call('EXPIRE', k, ttl)
  end
  local final = redis.call('HINCRBY', key, 'final', rows)
  if final >= tonumber(redis.call('HGET', key, 'total')) then batch_done(key, batch, now) end
end

local function open_moved(record, new)
  local id = redis.call('HGET', record, 'id')
  if new == 'queued' or new == 'retrying' then
    redis.call('ZADD', '{OPEN}', redis.call('TIME')[1], id)
  else
    redis.call('ZREM', '{OPEN}', id)
  end
end

-- Every status change of a record passes here: the open index follows it, and a batch row's
-- batch counts.
local function batch_moved(record, old, new, now)
  if old == new then return end
  open_moved(record, new)
  local batch = redis.call('HGET', record, 'batch')
  if not batch then return end
  local key = 'notifier:b:' .. batch
  if redis.call('EXISTS', key) == 0 then return end
  redis.call('HINCRBY', key, 'c:' .. old, -1)
  redis.call('HINCRBY', key, 'c:' .. new, 1)
  redis.call('HSET', key, 'updated_at', now)
  -- Final once: a late settle of a row another claim already ended moves it, but counts once.
  local was_final = old == 'sent' or old == 'failed' or old == 'cancelled' or old == 'delivered'
    or old == 'undelivered'
  if not was_final and (new == 'sent' or new == 'failed' or new == 'cancelled') then
    batch_final(key, batch, 1, now)
  end
end

local function batch_cancelled(record)
  local batch = redis.call('HGET', record, 'batch')
  return batch and redis.call('HGET', 'notifier:b:' .. batch, 'cancelled') == '1'
end
"""
