-- Take a captcha send from the end user's IP address's hourly limit, or refuse it.
--
-- KEYS[1] the address's window     notifier:captcha:ip:<address or /64>
-- ARGV[1] now, ms
-- ARGV[2] this send's member (unique)
-- ARGV[3] the address's hourly limit
-- ARGV[4] an hour, ms
--
-- Returns {'ok', 0} or {'ip_limit', ms to wait}.
--#include lib/window.lua

local now = tonumber(ARGV[1])
local wait = full(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[3]), now)
if wait > 0 then return {'ip_limit', wait} end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'ok', 0}
