-- Library: a sliding window of sends, a sorted set scored by the time of each (ms).
--
-- full(key, window, limit, now)  drops the sends older than `window` ms; 0 when there is room
--   for one more than `limit` allows, else the ms until the oldest send leaves the window.

local function full(key, window, limit, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
