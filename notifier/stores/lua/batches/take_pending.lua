-- Count a batch's rows against its client's rows in unfinished batches (the pending allowance).
--
-- KEYS[1] the client's pending batches   notifier:batch_pending:<client>
-- ARGV[1] the batch id
-- ARGV[2] its rows
-- ARGV[3] the most rows the client may have pending
-- ARGV[4] how long the entry is kept, seconds
-- ARGV[5..] the batches the caller found done, and '<id> gone' for each it found without a hash
--
-- Returns 1 when counted (or counted already: a retried call is not counted twice), -1 when the
-- batch would take the client past the limit. A field per unfinished batch, "rows:since"; a
-- batch found done, or gone (expired unfinished), no longer counts. The batches live in their
-- own shards, so the caller looks at them before this step: a batch only ever becomes done or
-- gone, never back, so what it saw still holds, and an entry it did not see is counted.

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
