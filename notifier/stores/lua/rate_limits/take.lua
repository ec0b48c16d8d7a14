-- Take a token from a client's bucket, which refills continuously up to its capacity. Time is
-- the Redis server's, so web processes on machines with unequal clocks share one bucket fairly.
--
-- KEYS[1] the bucket     notifier:rate:<name>
-- ARGV[1] its capacity, tokens
-- ARGV[2] its refill, tokens per ms
--
-- Returns {1, '0'} when taken, or {0, ms until a token}.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1]) or capacity
local at = tonumber(stored[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
if allowed == 1 then return {1, '0'} end
return {0, tostring((1 - tokens) / rate)}
