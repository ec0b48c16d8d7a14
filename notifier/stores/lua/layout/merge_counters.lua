-- Add the counters of the layout before hash tags to shard 0's, and empty the old, in one step.
--
-- KEYS[1] the old counters     notifier:metrics
-- KEYS[2] the new              notifier:{0}:metrics
--
-- Returns how many counters moved.

local counters = redis.call('HGETALL', KEYS[1])
for i = 1, #counters, 2 do redis.call('HINCRBY', KEYS[2], counters[i], counters[i + 1]) end
redis.call('DEL', KEYS[1])
return #counters / 2
