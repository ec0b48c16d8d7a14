-- Cancel a batch: its rows not fanned out yet are cancelled here (counted, never made); those
-- that are, the caller cancels one by one, and the claim of a row of a cancelled batch cancels
-- it too.
--
-- KEYS[1] the batch         notifier:{s}:b:<id>
-- KEYS[2] the schedule      notifier:{s}:scheduled
-- ARGV[1] the batch id
-- ARGV[2] now, RFC 3339
--
-- Returns {outcome, rows fanned out, client}: 'cancelled' (now or before), 'done' when every row
-- is final already, or 'missing'.
--#include lib/batch_counts.lua

local batch, schedule = KEYS[1], KEYS[2]
if redis.call('EXISTS', batch) == 0 then return {'missing', 0, ''} end
local client = redis.call('HGET', batch, 'client')
if redis.call('HGET', batch, 'done_at') and redis.call('HGET', batch, 'cancelled') ~= '1' then
  return {'done', 0, client}
end
local fanned = tonumber(redis.call('HGET', batch, 'fanned'))
if redis.call('HGET', batch, 'cancelled') == '1' then return {'cancelled', fanned, client} end
redis.call('HSET', batch, 'cancelled', '1', 'updated_at', ARGV[2])
redis.call('ZREM', schedule, 'batch:' .. ARGV[1])
local rest = tonumber(redis.call('HGET', batch, 'total')) - fanned
if rest > 0 then
  local state = redis.call('HGET', batch, 'state')
  redis.call('HINCRBY', batch, 'c:' .. state, -rest)
  redis.call('HINCRBY', batch, 'c:cancelled', rest)
  batch_final(batch, ARGV[1], rest, ARGV[2])
end
return {'cancelled', fanned, client}
