-- Note a soft bounce on a record: the last one's status, diagnostic and when, in its
-- 'soft_bounce' field. Its status stays as it is, and a record gone (expired) is not made
-- again without a retention.
--
-- KEYS[1] the record          notifier:{s}:n:<id>
-- ARGV[1] the soft bounce, JSON {"status", "diagnostic", "at"}
--
-- Returns 1 when noted, 0 when there is no record.
--#include lib/timeline.lua

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'soft_bounce', ARGV[1])
noted(KEYS[1], 'event', '', '', 'soft')
return 1
