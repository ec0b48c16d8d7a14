-- Take a captcha send from the end user's IP address's hourly limits, or refuse it (taking
-- nothing): the client's own, then every client's together.
--
-- KEYS[1] the client's window       notifier:captcha:ip:{<h>}:<client>
-- KEYS[2] every client's window     notifier:captcha:ip:{<h>}
-- (<h> the pseudonym of the end user's address, or its /64: notifier/stores/captchas.py)
-- ARGV[1] now, ms
-- ARGV[2] this send's member (unique)
-- ARGV[3] the client's hourly limit for the address
-- ARGV[4] the address's hourly ceiling across clients
-- ARGV[5] an hour, ms
--
-- Returns {'ok', 0}, or {'ip_limit' or 'ip_hourly_ceiling', ms to wait}.
--#include lib/window.lua

return take({KEYS[1], KEYS[2]}, {ARGV[3], ARGV[4]}, {'ip_limit', 'ip_hourly_ceiling'},
  tonumber(ARGV[5]), tonumber(ARGV[1]), ARGV[2]) or {'ok', 0}
