-- Add an event to a notification's timeline (lib/timeline.lua), if its record is still there:
-- one that expired is not made again without a retention.
--
-- KEYS[1] the record          notifier:{s}:n:<id>
-- ARGV[1] what: callback
-- ARGV[2] the provider ('' for none)
-- ARGV[3] the detail
-- ARGV[4] the outcome
--
-- Returns 1 when noted, 0 when there is no record.
--#include lib/timeline.lua

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
noted(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
