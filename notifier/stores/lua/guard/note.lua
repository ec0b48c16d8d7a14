-- Count a client's permanent bounce or complaint in this hour's bucket, then weigh its rate over
-- the window (the buckets given) against the thresholds: pause the client's mail at the pause
-- rate, warn once at the warning rate, once it sent at least the minimum volume.
--
-- KEYS[1] the client's guard          notifier:guard:{<client>}
-- KEYS[2] this hour's bucket          notifier:guard:{<client>}:<hour>, fields sent, bounced,
--                                     complained (KEYS[3..]: the hours before it, the window's)
-- ARGV[1] what: bounced or complained
-- ARGV[2] how long a bucket is kept, seconds
-- ARGV[3] the minimum volume (mails sent in the window) before any verdict
-- ARGV[4] the warning rate
-- ARGV[5] the pause rate
-- ARGV[6] now, RFC 3339
-- ARGV[7] the kind of rate: bounce or complaint
-- ARGV[8] when a provider took the mail, Unix seconds ('' if not known)
--
-- Returns {verdict, new (1/0), count, volume}: verdict 'ok', 'warn', 'pause', or 'paused' (the
-- client was paused before, for either rate), or 'before' (a mail sent before the client's
-- last resume: not counted, the window started again after it); new: the verdict was reached
-- now (a pause made, a warning not given before), for the caller to log once.

local guard, what = KEYS[1], ARGV[1]
local resumed = redis.call('HGET', guard, 'resumed')
if resumed and (ARGV[8] or '') ~= '' and tonumber(ARGV[8]) < tonumber(resumed) then
  return {'before', 0, 0, 0}
end
redis.call('HINCRBY', KEYS[2], what, 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
local count, volume = 0, 0
for i = 2, #KEYS do
  local found = redis.call('HMGET', KEYS[i], 'sent', what)
  volume = volume + tonumber(found[1] or '0')
  count = count + tonumber(found[2] or '0')
end
if redis.call('HEXISTS', guard, 'paused') == 1 then return {'paused', 0, count, volume} end
local warned = 'warned:' .. ARGV[7]
-- The rate as a quotient, as the rates are written: 42 of 600 is 0.07 exactly so, where 0.07 *
-- 600 comes to a hair over 42 in floating point and a rate at the threshold went unmet.
if volume < tonumber(ARGV[3]) or count / volume < tonumber(ARGV[4]) then
  redis.call('HDEL', guard, warned)
  return {'ok', 0, count, volume}
end
if count / volume >= tonumber(ARGV[5]) then
  local pause = cjson.encode({kind = ARGV[7], count = count, volume = volume, at = ARGV[6]})
  redis.call('HSET', guard, 'paused', pause)
  return {'pause', 1, count, volume}
end
return {'warn', redis.call('HSETNX', guard, warned, ARGV[6]), count, volume}
