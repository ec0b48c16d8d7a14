-- Add an address to a client's suppression list, or keep the entry there, unless that one
-- stops only bulk mail (unsubscribed) and this one more.
--
-- KEYS[1] the list     notifier:suppressed:{<client>}
-- ARGV[1] the address, in lower case
-- ARGV[2] its entry, JSON {"reason", "created_at"}
-- ARGV[3] whether its reason stops bulk mail only (1/0)
--
-- Returns {1 if added (0 if kept or replaced), the entry now}.

local had = redis.call('HGET', KEYS[1], ARGV[1])
if had and (ARGV[3] == '1' or cjson.decode(had)['reason'] ~= 'unsubscribed') then
  return {0, had}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {had and 0 or 1, ARGV[2]}
