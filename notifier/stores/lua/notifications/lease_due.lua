-- Lease the schedule's due members of one shard, so no other dispatcher takes them: they come
-- due again at the lease's end unless dispatched first, so a dispatcher that dies loses
-- nothing. Stamps the run, so /metrics shows when dispatch stopped even while nothing is due.
--
-- KEYS[1] the schedule      notifier:{s}:scheduled
-- KEYS[2] dispatched-at     notifier:{s}:dispatched_at
-- ARGV[1] now, Unix seconds
-- ARGV[2] the lease's end, Unix seconds
-- ARGV[3] the most members to lease
--
-- Returns the members leased (notification ids, batch:<id>, batch-done:<id>).

redis.call('SET', KEYS[2], ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
