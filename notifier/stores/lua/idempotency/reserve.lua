-- Reserve an Idempotency-Key's slot for a request, or answer with what holds it.
--
-- KEYS[1] the slot     notifier:idem:<client>:<sha256 of the key>
-- ARGV[1] the request's fingerprint
-- ARGV[2] how long a pending slot holds, seconds (its first request may have died)
--
-- Returns {'new'} (this request's now), {'conflict'} (another request's fingerprint),
-- {'pending'} (the first is under way), or {'done', status, body, location}: its answer.

local fingerprint = redis.call('HGET', KEYS[1], 'fingerprint')
if not fingerprint then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'new'}
end
if fingerprint ~= ARGV[1] then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'done' then return {'pending'} end
return {'done', redis.call('HGET', KEYS[1], 'status'), redis.call('HGET', KEYS[1], 'body'),
        redis.call('HGET', KEYS[1], 'location')}
