-- Library: what every status change of a notification record moves beside it, in the same
-- step. Included by the notification store's scripts (claim, settle, receipt, cancel) and the
-- batch store's cancel.
--
-- batch_moved(record, old, new, now)  the record went from `old` to `new`: the open index of its
--   shard follows it, and a batch row's batch counts (c:<status>, final, done_at)
-- batch_final(key, batch, rows, now)  `rows` rows of the batch became final
-- batch_cancelled(record)             whether the record is a row of a cancelled batch
--
-- A row's batch is found from its record, so its keys are not in the script's KEYS; they hash
-- to the record's slot all the same (rows are in their batch's shard: see
-- notifier.stores.slots). The names below are notifier.stores.batch_counts's SCHEDULED,
-- DONE_MEMBER and OPEN.
--#include lib/shard.lua

-- The batch is done: every row is final (its rows leave its client's pending allowance the next
-- time the client asks for one: see BatchStore.take_pending). Its callback, if the client wants
-- callbacks, goes on the schedule, due at once.
local function batch_done(key, batch, now)
  if redis.call('HSETNX', key, 'done_at', now) == 0 then return end
  redis.call('HSET', key, 'updated_at', now)
  if redis.call('HGET', key, 'callback') == '1' then
    -- Due now (Redis's clock): dispatch_due queues it within a second.
    redis.call('ZADD', in_shard(batch, 'scheduled'), redis.call('TIME')[1], 'batch-done:' .. batch)
  end
end

-- Rows became final: the batch (its content and rows too) is kept its retention from now on,
-- however long its rows took; done when the last is final.
local function batch_final(key, batch, rows, now)
  local ttl = redis.call('HGET', key, 'ttl')
  for _, k in ipairs({key, in_shard(batch, 'bc:' .. batch), in_shard(batch, 'br:' .. batch)}) do
    redis.call('EXPIRE', k, ttl)
  end
  local final = redis.call('HINCRBY', key, 'final', rows)
  if final >= tonumber(redis.call('HGET', key, 'total')) then batch_done(key, batch, now) end
end

-- A record whose message should be on a queue or in a worker's hands is in its shard's open
-- index, scored by when it became so (requeue_lost looks there for lost messages).
local function open_moved(record, new)
  local id = redis.call('HGET', record, 'id')
  if new == 'queued' or new == 'retrying' or new == 'sending' then
    redis.call('ZADD', in_shard(id, 'open'), redis.call('TIME')[1], id)
  else
    redis.call('ZREM', in_shard(id, 'open'), id)
  end
end

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
