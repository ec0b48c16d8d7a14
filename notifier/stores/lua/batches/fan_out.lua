-- Make one chunk of a batch's rows into queued notifications, if no run has yet: the cursor
-- moves in the same step, so a chunk is made once, whoever runs it.
--
-- KEYS[1] the batch             notifier:{s}:b:<id>
-- KEYS[2] the lane's list the row messages go on
-- KEYS[3..] a record and a payload key per row, in turn (notifier:{s}:n:<row>, notifier:{s}:p:<row>)
-- ARGV[1] rows fanned out before this chunk (the cursor it expects)
-- ARGV[2] rows fanned out after it
-- ARGV[3] the records' retention, seconds
-- ARGV[4] now, RFC 3339
-- ARGV[5] the fields every row's record shares: JSON, a flat list of names and values
-- ARGV[6] the batch's client
-- ARGV[7] its kind
-- ARGV[8] how long the message log keeps an entry, seconds
-- ARGV[9..] per row, six: its id, reference, payload, message ('' to publish after), the
--         fields of its record beside the common ones (JSON, a flat list; [] for none), and the
--         tags of its recipient and reference in the message log (8 bytes each)
--
-- Returns 1 when made here, 0 when another run made it first, -1 when the batch is cancelled.
-- The batch leaves 'scheduled' with its first chunk. A row joins the open index of its shard
-- (the batch's, but for a batch made before rows were), and the message log's lists of its shard
-- (lib/message_log.lua).
--#include lib/shard.lua
--#include lib/message_log.lua

local batch, lane = KEYS[1], KEYS[2]
if redis.call('HGET', batch, 'cancelled') == '1' then return -1 end
if redis.call('HGET', batch, 'fanned') ~= ARGV[1] then return 0 end
local scheduled = tonumber(redis.call('HGET', batch, 'c:scheduled') or '0')
if redis.call('HGET', batch, 'state') == 'scheduled' then
  redis.call('HSET', batch, 'state', 'queued', 'c:scheduled', 0, 'updated_at', ARGV[4])
  redis.call('HINCRBY', batch, 'c:queued', scheduled)
end
local common = cjson.decode(ARGV[5])
local rows = (#ARGV - 8) / 6
for i = 0, rows - 1 do
  local a = 9 + 6 * i
  local record, payload = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  redis.call('HSET', record, 'id', ARGV[a], 'reference', ARGV[a + 1], unpack(common))
  local own = cjson.decode(ARGV[a + 4])
  if #own > 0 then redis.call('HSET', record, unpack(own)) end
  redis.call('EXPIRE', record, ARGV[3])
  redis.call('SET', payload, ARGV[a + 2], 'EX', ARGV[3])
  redis.call('ZADD', in_shard(ARGV[a], 'open'), redis.call('TIME')[1], ARGV[a])
  if ARGV[a + 3] ~= '' then redis.call('LPUSH', lane, ARGV[a + 3]) end
  log_add(log_lists(ARGV[a], ARGV[6], ARGV[a + 5]), ARGV[a], ARGV[7], ARGV[a + 5], ARGV[8])
end
redis.call('HSET', batch, 'fanned', ARGV[2])
return 1
