-- Add an address to a client's suppression list, or keep the entry there, unless the new reason
-- stops more than the one there: unsubscribed (bulk mail) < complained (every mail but codes by
-- mail) < bounced and manual (every mail).
--
-- KEYS[1] the list     notifier:suppressed:{<client>}
-- ARGV[1] the address, in lower case
-- ARGV[2] its entry, JSON {"reason", "created_at"}
-- ARGV[3] how much its reason stops: 1, 2 or 3, as above
--
-- Returns {1 if added (0 if kept or replaced), the entry now}.

local STOPS = {unsubscribed = 1, complained = 2}
local had = redis.call('HGET', KEYS[1], ARGV[1])
if had and (STOPS[cjson.decode(had)['reason']] or 3) >= tonumber(ARGV[3]) then
  return {0, had}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {had and 0 or 1, ARGV[2]}
