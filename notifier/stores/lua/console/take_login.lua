-- Count a console login about to be checked against the failures of its name and of its
-- address over the last window (sliding: each failure leaves it a window after it was made),
-- or refuse it, counting nothing, when either is at its limit.
--
-- KEYS[1] the name's logins        notifier:console:login:{console}:name:<SHA-256 of the name>
-- KEYS[2] the address's logins     notifier:console:login:{console}:address:<SHA-256 of it>
-- ARGV[1] now, ms
-- ARGV[2] this login's member (unique: forgiving a right login removes it)
-- ARGV[3] the name's limit
-- ARGV[4] the address's limit
-- ARGV[5] the window, ms
--
-- Returns {'ok', 0}, or {'name' or 'address', ms until its oldest failure leaves the window}.
--#include lib/window.lua

return take({KEYS[1], KEYS[2]}, {ARGV[3], ARGV[4]}, {'name', 'address'},
  tonumber(ARGV[5]), tonumber(ARGV[1]), ARGV[2]) or {'ok', 0}
