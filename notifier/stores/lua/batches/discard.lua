-- Forget a batch that was never accepted (its fan-out could not be queued), unless its fan-out
-- has made rows already: a publish whose confirm came late or never, though the broker took the
-- message, and a worker ran it meanwhile. Then it stays, and the request was accepted after all.
--
-- KEYS[1] the batch        notifier:{s}:b:<id>
-- KEYS[2] its content      notifier:{s}:bc:<id>
-- KEYS[3] its rows         notifier:{s}:br:<id>
-- KEYS[4] the schedule     notifier:{s}:scheduled
-- KEYS[5] the shard's list of newest batches   notifier:{s}:batches
-- ARGV[1] the id
-- ARGV[2] its fan-out's member of the schedule
--
-- Returns 1 when forgotten (or not there), 0 when its fan-out has begun. Past maxmemory too.
--#include lib/past_full.lua

past_full(KEYS[1])
if tonumber(redis.call('HGET', KEYS[1], 'fanned') or '0') > 0 then return 0 end
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
