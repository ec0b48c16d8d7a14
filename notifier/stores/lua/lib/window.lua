-- Library: a sliding window of sends, a sorted set scored by the time of each (ms).
--
-- full(key, window, limit, now)  drops the sends older than `window` ms; 0 when there is room
--   for one more than `limit` allows, else the ms until there is: until the send leaves whose
--   going leaves `limit` - 1 (the oldest, unless the window holds more than the limit, as after
--   the limit was lowered).
-- take(keys, limits, names, window, now, member)  takes one send (`member`, unique) into each
--   window of `keys` when every one has room under its limit (`limits`, in the same order);
--   else takes nothing and returns {the name (`names`) of the first full one, ms to wait}.
--   Returns nil when taken.

local function full(key, window, limit, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then return 0 end
  local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return tonumber(freeing[2]) + window - now
end

local function take(keys, limits, names, window, now, member)
  for i, key in ipairs(keys) do
    local wait = full(key, window, tonumber(limits[i]), now)
    if wait > 0 then return {names[i], wait} end
  end
  for _, key in ipairs(keys) do
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
  end
  return nil
end
