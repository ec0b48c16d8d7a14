-- Library: the message log's indexes (notifier/stores/notifications/log.py says what they hold
-- and why they are lists). Each is a list, newest at its head, of entries
--   [tag (8 bytes), bucket lists only] log time (7 bytes) kind (1) id (16 bytes of a UUID, or
--   the id as it is)
-- the log time in microseconds, strictly rising in each list (so an entry's time names it there).
--
-- log_add(lists, id, kind, tags, keep)  index a new notification in `lists`: {the shard's log
--   (or its failures), its client's, then one bucket list a tag of `tags` (8 bytes each)}; each
--   list drops the entries older than `keep` seconds from its tail (up to eight, one push in
--   four) and expires `keep` seconds after this entry (an index dies with the last records it
--   could name).
-- log_entry_time(entry, offset)  an entry's log time (offset 8 in a bucket list, else 0).
-- log_lists(id, client, tags)  those lists of a notification: a bucket list a tag, the tag's
--   first two bytes modulo 1024 (notifier.stores.notifications.log.BUCKETS).
-- log_failed(record)  list a record that ended unsent (failed, undelivered, suppressed) in its
--   shard's failures, notifier:{s}:log:f, by when it did, for as long as the record is kept.
--#include lib/shard.lua

local LOG_KINDS = {mail = 'm', mail_captcha = 'c', sms_captcha = 'k', sms = 's'}

local function log_be7(n)
  local out = ''
  for _ = 1, 7 do
    out = string.char(n % 256) .. out
    n = math.floor(n / 256)
  end
  return out
end

local function log_entry_time(entry, offset)
  local n = 0
  for i = offset + 1, offset + 7 do n = n * 256 + string.byte(entry, i) end
  return n
end

-- A UUID's 16 bytes, with its kind's letter; any other id as it is, its letter in upper case.
local function log_id(id, kind)
  local code = LOG_KINDS[kind] or 'x'
  local hex = string.gsub(id, '-', '')
  if #id ~= 36 or #hex ~= 32 or string.find(hex, '[^0-9a-f]') then
    return string.upper(code) .. id
  end
  local bytes = {}
  for i = 1, 16 do bytes[i] = tonumber(string.sub(hex, 2 * i - 1, 2 * i), 16) end
  return code .. string.char(unpack(bytes))
end

local function log_add(lists, id, kind, tags, keep)
  local clock = redis.call('TIME')
  local t = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
  -- Every entry of the other lists is in the first (the shard's) with the same time: later than
  -- its newest is later than theirs.
  local head = redis.call('LINDEX', lists[1], 0)
  if head then t = math.max(t, log_entry_time(head, 0) + 1) end
  local entry = log_be7(t) .. log_id(id, kind)
  local oldest = t - tonumber(keep) * 1000000
  for i, list in ipairs(lists) do
    local offset, size = 0, 0
    if i > 2 then
      offset = 8
      size = redis.call('LPUSH', list, string.sub(tags, 8 * (i - 3) + 1, 8 * (i - 2)) .. entry)
    else
      size = redis.call('LPUSH', list, entry)
    end
    -- One push in four (by the list's length) drops what is too old from the tail.
    if size % 4 == 2 then
      for _ = 1, 8 do
        local tail = redis.call('LINDEX', list, -1)
        if not tail or log_entry_time(tail, offset) >= oldest then break end
        redis.call('RPOP', list)
      end
    end
    redis.call('EXPIRE', list, keep)
  end
end

-- The lists of a notification: its shard's log, its client's, a bucket list a tag.
local function log_lists(id, client, tags)
  local lists = {in_shard(id, 'log'), in_shard(id, 'log:c:' .. client)}
  for i = 1, #tags / 8 do
    local a, b = string.byte(tags, 8 * (i - 1) + 1, 8 * (i - 1) + 2)
    lists[#lists + 1] = in_shard(id, 'log:h:' .. ((a * 256 + b) % 1024))
  end
  return lists
end

local function log_failed(record)
  local found = redis.call('HMGET', record, 'id', 'kind')
  local keep = redis.call('TTL', record)
  if not found[1] or keep < 1 then return end
  log_add({in_shard(found[1], 'log:f')}, found[1], found[2], '', keep)
end
