-- Library: a notification reached a final status, counted in a shard's counters hash.
--
-- count_final(metrics key, record key, status)
--   adds one to final:<kind>:<status>:<live or test> (notifier_notifications_total); and, for a
--   live one that ended failed or undelivered, to failures:<provider> (notifier_failures_total:
--   the provider that last had it, or none when no provider did, as a code that expired unsent;
--   the console's failures by provider).
-- count_minute(minute key, record key, status)
--   adds a send a provider took (sent) or a final failure (failed) to its minute's sends, by
--   lane (lane:<lane>:<status>) and by client and kind (client:<client>:<kind>:<status>), kept
--   an hour: the console's chart and its clients' failures.

-- unsettled(status)
--   whether a record still waits for an attempt or is under one (scheduled, queued, sending,
--   retrying): any other status is final.
local function unsettled(status)
  return status == 'scheduled' or status == 'queued' or status == 'sending' or status == 'retrying'
end

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

local function count_minute(minute, record, status)
  local seen = redis.call('HMGET', record, 'lane', 'client', 'kind')
  redis.call('HINCRBY', minute, 'lane:' .. (seen[1] or '') .. ':' .. status, 1)
  local by_client = 'client:' .. (seen[2] or '') .. ':' .. (seen[3] or '')
  redis.call('HINCRBY', minute, by_client .. ':' .. status, 1)
  redis.call('EXPIRE', minute, 3660)
end
