-- Claim a notification for one attempt: move a live record to 'sending', count the attempt,
-- and answer with the payload to send.
--
-- KEYS[1] the record      notifier:{s}:n:<id>
-- KEYS[2] its payload     notifier:{s}:p:<id>
-- KEYS[3] the counters    notifier:{s}:metrics
-- KEYS[4] this minute's sends  notifier:{s}:sends:<Unix minute> (one given up counts there)
-- ARGV[1] now, RFC 3339
-- ARGV[2] now, Unix seconds
-- ARGV[3] the lease, seconds
-- ARGV[4] the most attempts
-- ARGV[5] this claim's token
-- ARGV[6] the lane its message came on ('' when not known)
--
-- Returns {status, attempt, seconds to wait, payload, unrecorded}:
--   {'sending', attempt, '0', payload, unrecorded}  this claim's now (or it was already: made
--                                       again after its answer was lost with a primary, the same
--                                       answer); unrecorded counts the attempts before it whose
--                                       outcome was never recorded (taken over past their lease:
--                                       each may have sent it);
--   {'busy', 0, seconds}                another task holds it under an unexpired lease;
--   {'failed', attempts, '0'}           one past the most attempts (its workers died on it):
--                                       failed here rather than looping forever;
--   {'cancelled', -1, '0'}              a row of a cancelled batch, cancelled here;
--   {status, 0, '0'}                    final already, or 'missing'.
-- A first attempt's wait in its lane goes in the queue_wait histogram.
--#include lib/batch_counts.lua
--#include lib/final.lua
--#include lib/observe.lua
--#include lib/timeline.lua
--#include lib/message_log.lua

local record, payload, metrics, minute = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local status = redis.call('HGET', record, 'status')
if not status then return {'missing', 0, '0'} end
if not unsettled(status) then
  return {status, 0, '0'}
end
local now = tonumber(ARGV[2])
local mode = redis.call('HGET', record, 'mode') == 'test' and ':test' or ':live'
if status == 'sending' then
  if redis.call('HGET', record, 'claim') == ARGV[5] then
    return {'sending', tonumber(redis.call('HGET', record, 'attempts')), '0',
            redis.call('GET', payload), tonumber(redis.call('HGET', record, 'unrecorded') or '0')}
  end
  local lease = tonumber(redis.call('HGET', record, 'lease_until') or '0')
  if lease > now then return {'busy', 0, tostring(lease - now)} end
  redis.call('HINCRBY', record, 'unrecorded', 1)  -- its attempt's outcome never came
end
if batch_cancelled(record) then
  redis.call('HSET', record, 'status', 'cancelled', 'updated_at', ARGV[1])
  redis.call('DEL', payload)
  count_final(metrics, record, 'cancelled')
  batch_moved(record, status, 'cancelled', ARGV[1])
  noted(record, 'cancelled', '', '', 'its batch was cancelled')
  return {'cancelled', -1, '0'}
end
local attempts = tonumber(redis.call('HGET', record, 'attempts') or '0')
if attempts >= tonumber(ARGV[4]) then
  redis.call('HSET', record, 'status', 'failed', 'updated_at', ARGV[1],
             'error', 'gave up after ' .. attempts .. ' attempts that did not finish')
  redis.call('DEL', payload)
  count_final(metrics, record, 'failed')
  if minute then count_minute(minute, record, 'failed') end
  batch_moved(record, status, 'failed', ARGV[1])
  noted(record, 'attempt', '', 'attempt ' .. attempts, 'failed: gave up, attempts did not finish')
  log_failed(record)
  return {'failed', attempts, '0'}
end
attempts = redis.call('HINCRBY', record, 'attempts', 1)
redis.call('HSET', record, 'status', 'sending', 'updated_at', ARGV[1],
           'lease_until', tostring(now + tonumber(ARGV[3])), 'claim', ARGV[5])
batch_moved(record, status, 'sending', ARGV[1])
redis.call('HINCRBY', metrics, 'attempts:' .. redis.call('HGET', record, 'kind') .. mode, 1)
if ARGV[6] ~= '' then
  redis.call('HSET', record, 'lane', ARGV[6])
  local queued_at = tonumber(redis.call('HGET', record, 'queued_at') or '')
  if attempts == 1 and queued_at then
    observe(metrics, 'queue_wait', ARGV[6], redis.call('HGET', record, 'kind'), now - queued_at)
  end
end
return {'sending', attempts, '0', redis.call('GET', payload),
        tonumber(redis.call('HGET', record, 'unrecorded') or '0')}
