-- Move a captcha key whose name holds a recipient (or an end user's address) in the clear to
-- its name by pseudonym: a window of sends (a sorted set) is merged into what the new name
-- holds already (a send counted under either counts once), keeping the longer expiry; a code
-- or a resend interval is renamed, unless the new name holds a newer one (then the old is
-- dropped). The old key is gone after. Its keys span slots: it runs on a Redis that is no
-- Cluster, as the layout's other moves do.
--
-- KEYS[1] the old name     notifier:captcha:phone:{+447700900123}:<client>, ...
-- KEYS[2] the new name     notifier:captcha:phone:{<pseudonym>}:<client>, ...
--
-- Returns 1 when it moved something, 0 when the old key was gone.

local old, new = KEYS[1], KEYS[2]
local kind = redis.call('TYPE', old)['ok']
if kind == 'none' then return 0 end
if redis.call('EXISTS', new) == 0 then
  redis.call('RENAME', old, new)
  return 1
end
if kind == 'zset' then
  local ttl = math.max(redis.call('PTTL', old), redis.call('PTTL', new))
  local sends = redis.call('ZRANGE', old, 0, -1, 'WITHSCORES')
  for i = 1, #sends, 2 do redis.call('ZADD', new, sends[i + 1], sends[i]) end
  if ttl > 0 then redis.call('PEXPIRE', new, ttl) end
end
redis.call('DEL', old)
return 1
