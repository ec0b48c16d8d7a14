-- Library: one observation in a latency histogram kept in a shard's counters hash (see
-- notifier.stores.latency, whose BUCKETS these bounds are: a test holds them equal).
--
-- observe(metrics key, name, lane, kind, seconds)
--   adds one to hist:<name>:<lane>:<kind>:<le> of the one bucket it falls in (not the buckets
--   above it: /metrics makes them cumulative) and the seconds to hist:<name>:<lane>:<kind>:sum.

-- Each bucket's bound, and its `le` as prometheus_client writes it ("1.0").
local BUCKETS = {
  {0.005, '0.005'}, {0.01, '0.01'}, {0.025, '0.025'}, {0.05, '0.05'}, {0.1, '0.1'},
  {0.25, '0.25'}, {0.5, '0.5'}, {1.0, '1.0'}, {2.0, '2.0'}, {5.0, '5.0'}, {10.0, '10.0'},
  {30.0, '30.0'}, {60.0, '60.0'}, {300.0, '300.0'}, {1800.0, '1800.0'},
}

local function observe(key, name, lane, kind, seconds)
  if seconds < 0 then seconds = 0 end
  local le = '+Inf'
  for _, bucket in ipairs(BUCKETS) do
    if seconds <= bucket[1] then
      le = bucket[2]
      break
    end
  end
  local field = 'hist:' .. name .. ':' .. lane .. ':' .. kind .. ':'
  redis.call('HINCRBY', key, field .. le, 1)
  redis.call('HINCRBYFLOAT', key, field .. 'sum', seconds)
end
