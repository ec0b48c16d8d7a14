-- Record the outcome of an attempt: the new status, the provider, its error and message id, in
-- one step with the counters and the client's status callback.
--
-- KEYS[1] the record           notifier:{s}:n:<id>
-- KEYS[2] its payload          notifier:{s}:p:<id>
-- KEYS[3] the counters         notifier:{s}:metrics
-- KEYS[4] this minute's sends  notifier:{s}:sends:<Unix minute>
-- KEYS[5] the callback list    (only with a callback message: ARGV[9])
-- ARGV[1] the status: sent, failed or retrying
-- ARGV[2] the provider ('' when none was reached)
-- ARGV[3] its error ('' on success)
-- ARGV[4] now, RFC 3339
-- ARGV[5] the record's retention, seconds
-- ARGV[6] whether the status is final (1/0)
-- ARGV[7] only if the record waits for an attempt: scheduled, queued or retrying (1/0)
-- ARGV[8] the provider's message id ('' when none)
-- ARGV[9] the callback message to push ('' for none, or to publish after)
-- ARGV[10] the clients that want callbacks, " a b "
-- ARGV[11] the claim this outcome is of ('' for none)
-- ARGV[12] now, Unix seconds
-- ARGV[13] how many recipients the provider took the mail for ('' when not a mail); a mail
--          provider's events make it undelivered once each of them failed for good
--
-- Returns {moved, callback due, revoked} (each 1/0). An attempt's outcome is recorded once:
-- made again (its answer was lost with a primary), nothing moves; nor does the outcome of a
-- claim that is no longer the record's (taken over past its lease), or of one on a final record. A row of a cancelled batch
-- that would retry is cancelled instead ('revoked': the caller tells the client). Counts final
-- statuses and provider errors; a live send a provider took goes in the delivery histogram,
-- under the lane it was claimed from; a send a provider took, or a final failure, is counted in
-- its minute's sends, by lane (lane:<lane>:<sent or failed>) and by client and kind
-- (client:<client>:<kind>:<sent or failed>), kept an hour (the console's chart and clients).
-- Without a message (a broker other than this Redis),
-- 'callback due' says to publish one. A full Redis records it all the same (lib/past_full.lua).
--#include lib/batch_counts.lua
--#include lib/final.lua
--#include lib/observe.lua
--#include lib/past_full.lua
--#include lib/timeline.lua
--#include lib/message_log.lua

local record, payload, metrics, minute, callbacks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
past_full(record)
local status = redis.call('HGET', record, 'status')
if not status then return {0, 0, 0} end
if ARGV[11] ~= '' and redis.call('HGET', record, 'settled') == ARGV[11] then
  return {0, 0, 0}
end
local was_final = not unsettled(status)
if ARGV[11] ~= '' and (redis.call('HGET', record, 'claim') ~= ARGV[11]
    or (was_final and not (status == 'failed' and ARGV[1] == 'sent'))) then
  -- An attempt that outlived its lease: a later claim took the notification over (its outcome
  -- stands), or it is final already. Such an outcome moved a sent record back to retrying, and
  -- counted a batch's row final twice (done too early). But a 'sent' after a claim gave up on
  -- this attempt (the most attempts spent: the record failed, its claim still this one's) is
  -- recorded: the provider took it.
  return {0, 0, 0}
end
if ARGV[7] == '1' and status ~= 'scheduled' and status ~= 'queued' and status ~= 'retrying' then
  return {0, 0, 0}  -- final, or an attempt under way: its outcome, or the sweep, settles it
end
if ARGV[11] ~= '' then redis.call('HSET', record, 'settled', ARGV[11]) end
local new, final, revoked = ARGV[1], ARGV[6], 0
if new == 'retrying' and batch_cancelled(record) then new, final, revoked = 'cancelled', '1', 1 end
redis.call('HSET', record, 'status', new, 'provider', ARGV[2], 'error', ARGV[3],
           'updated_at', ARGV[4])
-- When a provider took it (Unix seconds): the bounce-rate guard's window counted it then.
if new == 'sent' then redis.call('HSET', record, 'sent_at', ARGV[12]) end
batch_moved(record, status, new, ARGV[4])
noted(record, 'attempt', ARGV[2], 'attempt ' .. (redis.call('HGET', record, 'attempts') or '0'),
      ARGV[1] .. (ARGV[3] ~= '' and ': ' .. ARGV[3] or ''))
if revoked == 1 then noted(record, 'cancelled', '', '', 'its batch was cancelled') end
redis.call('EXPIRE', record, ARGV[5])
if final == '1' then
  redis.call('DEL', payload)
  if new ~= 'sent' and new ~= 'cancelled' then log_failed(record) end
  if not was_final then count_final(metrics, record, new) end  -- a final status counts once
end
if ARGV[3] ~= '' and ARGV[2] ~= '' then
  redis.call('HINCRBY', metrics, 'provider_errors:' .. ARGV[2], 1)
end
if new == 'sent' or new == 'failed' then count_minute(minute, record, new) end
if new == 'sent' and ARGV[2] ~= '' then
  local seen = redis.call('HMGET', record, 'lane', 'queued_at', 'kind', 'mode')
  local queued_at = tonumber(seen[2] or '')
  if seen[1] and queued_at and seen[4] ~= 'test' then
    observe(metrics, 'delivery', seen[1], seen[3], tonumber(ARGV[12]) - queued_at)
  end
end
if ARGV[8] ~= '' then redis.call('HSET', record, 'provider_ref', ARGV[8]) end
if ARGV[13] ~= '' then redis.call('HSET', record, 'recipients', ARGV[13]) end
local due = 0
if revoked == 0 and ARGV[6] == '1'
   and string.find(ARGV[10], ' ' .. redis.call('HGET', record, 'client') .. ' ', 1, true) then
  due = 1
  if ARGV[9] ~= '' then redis.call('LPUSH', callbacks, ARGV[9]) end
end
return {1, due, revoked}
