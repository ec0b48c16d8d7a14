-- Cancel a notification still in one of the statuses it may be cancelled from.
--
-- KEYS[1] the record          notifier:{s}:n:<id>
-- KEYS[2] its payload         notifier:{s}:p:<id>
-- KEYS[3] the schedule        notifier:{s}:scheduled
-- KEYS[4] the counters        notifier:{s}:metrics
-- KEYS[5] the callback list   (only with a callback message: ARGV[3])
-- ARGV[1] the notification id
-- ARGV[2] now, RFC 3339
-- ARGV[3] the callback message to push ('' for none, or to publish after)
-- ARGV[4] the clients that want callbacks, " a b "
-- ARGV[5] the statuses it may cancel, " scheduled "
--
-- Returns {the status it had (false for no record), callback due (1/0)}: cancelled when that
-- status is one of ARGV[5].
--#include lib/batch_counts.lua
--#include lib/final.lua
--#include lib/timeline.lua

local record, payload, schedule, metrics, callbacks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local status = redis.call('HGET', record, 'status')
if not status or not string.find(ARGV[5], ' ' .. status .. ' ', 1, true) then
  return {status or false, 0}
end
redis.call('HSET', record, 'status', 'cancelled', 'updated_at', ARGV[2])
batch_moved(record, status, 'cancelled', ARGV[2])
noted(record, 'cancelled', '', '', 'was ' .. status)
redis.call('ZREM', schedule, ARGV[1])
redis.call('DEL', payload)
count_final(metrics, record, 'cancelled')
local due = 0
if string.find(ARGV[4], ' ' .. redis.call('HGET', record, 'client') .. ' ', 1, true) then
  due = 1
  if ARGV[3] ~= '' then redis.call('LPUSH', callbacks, ARGV[3]) end
end
return {status, due}
