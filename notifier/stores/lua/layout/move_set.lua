-- Move a sorted set of the layout before hash tags into each shard's set: every member to its
-- shard's (a batch's members, batch:<id> and batch-done:<id>, to their batch's), with its
-- score; the old set is gone after. Runs only where the old key is (it spans slots: never on
-- a Redis Cluster, which a fresh deployment starts with).
--
-- KEYS[1] the old set     notifier:scheduled or notifier:open
-- ARGV[1] the name of each shard's set: scheduled or open
--
-- Returns how many members moved.
--#include lib/shard.lua

local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local owner = members[i]
  for _, prefix in ipairs({'batch-done:', 'batch:'}) do
    if string.sub(owner, 1, #prefix) == prefix then owner = string.sub(owner, #prefix + 1) end
  end
  redis.call('ZADD', in_shard(owner, ARGV[1]), members[i + 1], members[i])
end
redis.call('DEL', KEYS[1])
return #members / 2
