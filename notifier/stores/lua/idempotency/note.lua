-- Note, in a request's pending slot, the id of what it stores (once its record means the
-- send is accepted): a retry after the request died before keeping its answer finds the
-- record by it, and answers from it instead of sending again.
--
-- KEYS[1] the slot     notifier:idem:<client>:<sha256 of the key>
-- ARGV[1] the request's fingerprint
-- ARGV[2] the id it stores
-- ARGV[3] the status its answer will give (queued or scheduled)
-- ARGV[4] how long the slot holds from now, seconds (as long as a kept answer)
--
-- Returns 1, or 0 when the slot is no longer this request's (gone, or another's).

if redis.call('HGET', KEYS[1], 'fingerprint') ~= ARGV[1]
    or redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  return 0
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'noted_status', ARGV[3],
           'noted_at', now[1] * 1000 + math.floor(now[2] / 1000))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
