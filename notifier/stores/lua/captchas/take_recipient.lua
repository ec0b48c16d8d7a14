-- Take a captcha send from a recipient's limits, or say which refuses it (taking nothing).
--
-- KEYS[1] the resend interval        notifier:captcha:resend:<client>:<purpose>:{<h>}
-- KEYS[2] the client's window        notifier:captcha:<window>:{<h>}:<client>
-- KEYS[3] every client's window      notifier:captcha:<window>:{<h>}
-- (<h> the pseudonym of the recipient as the limits count it: notifier/stores/captchas.py)
-- ARGV[1] now, ms
-- ARGV[2] this send's member (unique)
-- ARGV[3] the resend interval, ms (0 for none)
-- ARGV[4] the client's daily limit
-- ARGV[5] a day, ms
-- ARGV[6] the recipient's ceiling across clients
-- ARGV[7] the ceiling's name in a refusal
--
-- Returns {'ok', 0}, or {limit name, ms to wait}: 'resend_interval', 'daily_limit' or ARGV[7].
--#include lib/window.lua

local wait = redis.call('PTTL', KEYS[1])
if wait > 0 then return {'resend_interval', wait} end
local refused = take({KEYS[2], KEYS[3]}, {ARGV[4], ARGV[6]}, {'daily_limit', ARGV[7]},
  tonumber(ARGV[5]), tonumber(ARGV[1]), ARGV[2])
if refused then return refused end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return {'ok', 0}
