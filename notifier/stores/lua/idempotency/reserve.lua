-- Reserve an Idempotency-Key's slot for a request, or answer with what holds it.
--
-- KEYS[1] the slot     notifier:idem:<client>:<sha256 of the key>
-- ARGV[1] the request's fingerprint
-- ARGV[2] how long a pending slot holds, seconds (its first request may have died)
-- ARGV[3] the id of a pending slot's first request that never stored it (noted, then died
--         before storing): the slot is this request's now; '' for none
--
-- Returns {'new'} (this request's now), {'conflict'} (another request's fingerprint),
-- {'pending', id, status, age} (the first is under way: the id it noted before storing, with
-- the status its answer gives and how many ms ago, or '' before it noted one), or
-- {'done', status, body, location}: its answer.

local fingerprint = redis.call('HGET', KEYS[1], 'fingerprint')
if not fingerprint then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'new'}
end
if fingerprint ~= ARGV[1] then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'done' then
  local noted = redis.call('HMGET', KEYS[1], 'id', 'noted_status', 'noted_at')
  if ARGV[3] ~= '' and noted[1] == ARGV[3] then
    redis.call('HDEL', KEYS[1], 'id', 'noted_status', 'noted_at')
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return {'new'}
  end
  if not noted[1] then return {'pending', '', '', ''} end
  local now = redis.call('TIME')
  local age = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(noted[3])
  return {'pending', noted[1], noted[2], age}
end
return {'done', redis.call('HGET', KEYS[1], 'status'), redis.call('HGET', KEYS[1], 'body'),
        redis.call('HGET', KEYS[1], 'location')}
