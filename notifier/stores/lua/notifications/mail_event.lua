-- Apply what a mail provider's event says of one recipient of a sent mail (or of the whole mail),
-- once: a record never moves backwards, and an event that came before changes nothing more.
--
-- Per recipient (its token: a keyed hash of the address, never the address) the record keeps
-- 'r:<token>' (d: delivered, b: failed for good) and 'c:<token>' (complained). The mail is
-- delivered once any recipient is, and undelivered once every recipient ('recipients', 1 when
-- absent) failed for good; a soft bounce is noted as the record's 'soft_bounce' (the latest by
-- its time; of two at once, the first), the first complaint as its 'complaint'.
--
-- KEYS[1] the record          notifier:{s}:n:<id>
-- KEYS[2] the counters        notifier:{s}:metrics
-- KEYS[3] the callback list   (only with a callback message: ARGV[7])
-- ARGV[1] what happened: delivered, bounced (for good), dropped (the provider would not send it
--         to the recipient), failed (the whole mail refused), soft (deferred or a soft bounce),
--         complained
-- ARGV[2] the recipient's token ('' for the whole mail)
-- ARGV[3] the note: the error (bounced, dropped, failed), the soft bounce's JSON {"status",
--         "diagnostic", "at"}, or the complaint's JSON {"type", "at"}
-- ARGV[4] now, RFC 3339
-- ARGV[5] the record's retention, seconds
-- ARGV[6] the provider
-- ARGV[7] the callback message to push ('' for none, or to publish after)
-- ARGV[8] the clients that want callbacks, " a b "
-- ARGV[9] the status the callback message tells ('' without one)
--
-- Returns {outcome, callback due (1/0), first (1/0), the record's client}: outcome 'moved' (its
-- status moved), 'noted' (something new, its status as it was), 'duplicate' (nothing new),
-- 'changed' (a complaint's callback was made for another status than the record's now: make it
-- again), or the status that leaves nothing to apply ('missing' for no record; an open one's
-- send is not recorded yet). first: the mail's first permanent bounce, or its first complaint.
--#include lib/batch_counts.lua
--#include lib/final.lua
--#include lib/timeline.lua
--#include lib/message_log.lua

local record, metrics, callbacks = KEYS[1], KEYS[2], KEYS[3]
local kind, token, note, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', record, 'status')
if not status then return {'missing', 0, 0, ''} end
if unsettled(status) then
  return {status, 0, 0, ''}
end
local client = redis.call('HGET', record, 'client')

-- The client's status callback, for the status the message was made for.
local function tell()
  if ARGV[9] == '' or not string.find(ARGV[8], ' ' .. client .. ' ', 1, true) then return 0 end
  if ARGV[7] ~= '' then redis.call('LPUSH', callbacks, ARGV[7]) end
  return 1
end

-- Something new: counted, and on the timeline (what happened, never to whom): a 'receipt' when
-- it moved the mail's status, else an 'event'.
local function counted(moved_to)
  redis.call('HINCRBY', metrics, 'mail_events:' .. ARGV[6] .. ':' .. kind, 1)
  if moved_to then
    noted(record, 'receipt', ARGV[6], '', moved_to)
  else
    noted(record, 'event', ARGV[6], '', kind)
  end
end

if kind == 'soft' then
  local had = redis.call('HGET', record, 'soft_bounce')
  if had and cjson.decode(had)['at'] >= cjson.decode(note)['at'] then
    return {'duplicate', 0, 0, client}  -- the same one again, or one no later than the last
  end
  redis.call('HSET', record, 'soft_bounce', note)
  counted()
  return {'noted', 0, 0, client}
end

if kind == 'complained' then
  if status ~= ARGV[9] and ARGV[9] ~= '' then return {'changed', 0, 0, client} end
  if redis.call('HSETNX', record, 'c:' .. token, '1') == 0 then
    return {'duplicate', 0, 0, client}
  end
  counted()
  if redis.call('HSETNX', record, 'complaint', note) == 0 then return {'noted', 0, 0, client} end
  return {'noted', tell(), 1, client}
end

local new, first = nil, 0
if kind == 'delivered' then
  if redis.call('HSETNX', record, 'r:' .. token, 'd') == 0 then
    return {'duplicate', 0, 0, client}  -- delivered again, or failed for good before
  end
  if status == 'sent' then new = 'delivered' end
elseif kind == 'failed' then
  if status ~= 'sent' then return {'duplicate', 0, 0, client} end
  new = 'undelivered'
else  -- bounced, dropped: this recipient failed for good
  if redis.call('HGET', record, 'r:' .. token) == 'b' then return {'duplicate', 0, 0, client} end
  redis.call('HSET', record, 'r:' .. token, 'b')
  local failed = redis.call('HINCRBY', record, 'failed', 1)
  if kind == 'bounced' then first = redis.call('HSETNX', record, 'bounced', '1') end
  local recipients = tonumber(redis.call('HGET', record, 'recipients') or '1')
  if status == 'sent' and failed >= recipients then new = 'undelivered' end
end
counted(new)
if not new then return {'noted', 0, first, client} end

redis.call('HSET', record, 'status', new, 'updated_at', now)
if new == 'undelivered' then redis.call('HSET', record, 'error', note) end
batch_moved(record, 'sent', new, now)
redis.call('EXPIRE', record, ARGV[5])
if new == 'undelivered' then log_failed(record) end
redis.call('HINCRBY', metrics, 'receipts:' .. ARGV[6] .. ':' .. new, 1)
count_final(metrics, record, new)
local due = 0
if ARGV[9] == new then due = tell() end
return {'moved', due, first, client}
