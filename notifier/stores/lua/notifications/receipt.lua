-- Apply a provider's delivery receipt: move a 'sent' record to delivered or undelivered, once
-- (never backwards, never from one receipt status to the other).
--
-- KEYS[1] the record          notifier:{s}:n:<id>
-- KEYS[2] the counters        notifier:{s}:metrics
-- KEYS[3] the callback list   (only with a callback message: ARGV[6])
-- ARGV[1] the status: delivered or undelivered
-- ARGV[2] its error ('' for none)
-- ARGV[3] now, RFC 3339
-- ARGV[4] the record's retention, seconds
-- ARGV[5] the provider
-- ARGV[6] the callback message to push ('' for none, or to publish after)
-- ARGV[7] the clients that want callbacks, " a b "
--
-- Returns {'moved', callback due (1/0)}, or {status, 0} with the status that leaves nothing to
-- move ('missing' for no record; an open one's send is not recorded yet).
--#include lib/batch_counts.lua
--#include lib/final.lua
--#include lib/timeline.lua
--#include lib/message_log.lua

local record, metrics, callbacks = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', record, 'status')
if not status then return {'missing', 0} end
if status ~= 'sent' then return {status, 0} end
redis.call('HSET', record, 'status', ARGV[1], 'error', ARGV[2], 'updated_at', ARGV[3])
batch_moved(record, 'sent', ARGV[1], ARGV[3])
noted(record, 'receipt', ARGV[5], '', ARGV[1])
redis.call('EXPIRE', record, ARGV[4])
if ARGV[1] == 'undelivered' then log_failed(record) end
redis.call('HINCRBY', metrics, 'receipts:' .. ARGV[5] .. ':' .. ARGV[1], 1)
count_final(metrics, record, ARGV[1])
local due = 0
if string.find(ARGV[7], ' ' .. redis.call('HGET', record, 'client') .. ' ', 1, true) then
  due = 1
  if ARGV[6] ~= '' then redis.call('LPUSH', callbacks, ARGV[6]) end
end
return {'moved', due}
