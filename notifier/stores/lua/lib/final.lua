-- Library: a notification reached a final status, counted in a shard's counters hash.
--
-- count_final(metrics key, record key, status)
--   adds one to final:<kind>:<status>:<live or test> (notifier_notifications_total); and, for a
--   live one that ended failed or undelivered, to failures:<provider> (notifier_failures_total:
--   the provider that last had it, or none when no provider did, as a code that expired unsent;
--   the console's failures by provider).

local function count_final(metrics, record, status)
  local seen = redis.call('HMGET', record, 'kind', 'mode', 'provider')
  local mode = seen[2] == 'test' and ':test' or ':live'
  redis.call('HINCRBY', metrics, 'final:' .. (seen[1] or '') .. ':' .. status .. mode, 1)
  if mode == ':live' and (status == 'failed' or status == 'undelivered') then
    local provider = seen[3]
    if not provider or provider == '' then provider = 'none' end
    redis.call('HINCRBY', metrics, 'failures:' .. provider, 1)
  end
end
