-- A due member's message is on its queue: off the schedule, and a scheduled notification is
-- queued from now (its latency histograms start now).
--
-- KEYS[1] the record        notifier:{s}:n:<id>
-- KEYS[2] the schedule      notifier:{s}:scheduled
-- KEYS[3] the open index    notifier:{s}:open
-- ARGV[1] the member
-- ARGV[2] now, RFC 3339
-- ARGV[3] the notification (or batch) id
-- ARGV[4] now, Unix seconds
--
-- Returns 1.

redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'scheduled' then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'updated_at', ARGV[2], 'queued_at', ARGV[4])
  redis.call('ZADD', KEYS[3], redis.call('TIME')[1], ARGV[3])
end
return 1
