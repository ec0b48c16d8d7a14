-- Read one list of the message log (lib/message_log.lua), newest first: the entries below a
-- log time that match a tag and a kind, up to a number, looking at no more than a budget.
--
-- KEYS[1] the list              notifier:{s}:log, notifier:{s}:log:c:<client>, ...:log:h:<n>
-- ARGV[1] below: only entries whose log time is less ('' for no bound), microseconds
-- ARGV[2] since: none older, microseconds (the list is over where they start)
-- ARGV[3] how many matching entries to answer
-- ARGV[4] how many entries to look at, at most
-- ARGV[5] the tag to match (8 bytes: a bucket list), '' for a list without tags
-- ARGV[6] the kind letters to match ('mc'), '' for any
--
-- Returns {over (1/0), lowest log time looked at, then per entry: log time, kind letter, id}.
-- 'over': no entry below those answered is left to match (the list, or since, ended); else
-- every entry down to the lowest time looked at was looked at. Ids of UUIDs are given back as
-- their text.
--#include lib/message_log.lua

local list, tag = KEYS[1], ARGV[5]
local offset = tag == '' and 0 or 8
local since, want, budget = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local size = redis.call('LLEN', list)
local at = 0
if ARGV[1] ~= '' then  -- the first entry below: the list falls from head to tail
  local below, high = tonumber(ARGV[1]), size
  while at < high do
    local mid = math.floor((at + high) / 2)
    if log_entry_time(redis.call('LINDEX', list, mid), offset) < below then
      high = mid
    else
      at = mid + 1
    end
  end
end

local function text(raw)
  local hex = string.gsub(raw, '.', function(c) return string.format('%02x', string.byte(c)) end)
  return string.sub(hex, 1, 8) .. '-' .. string.sub(hex, 9, 12) .. '-' .. string.sub(hex, 13, 16)
    .. '-' .. string.sub(hex, 17, 20) .. '-' .. string.sub(hex, 21, 32)
end

local found, looked, lowest = {}, 0, 0
while looked < budget do
  local chunk = redis.call('LRANGE', list, at, at + math.min(256, budget - looked) - 1)
  if #chunk == 0 then return {1, lowest, unpack(found)} end
  for _, entry in ipairs(chunk) do
    local t = log_entry_time(entry, offset)
    if t < since then return {1, lowest, unpack(found)} end
    looked, lowest = looked + 1, t
    local code = string.sub(entry, offset + 8, offset + 8)
    if (tag == '' or string.sub(entry, 1, 8) == tag)
       and (ARGV[6] == '' or string.find(ARGV[6], string.lower(code), 1, true)) then
      local id = string.sub(entry, offset + 9)
      found[#found + 1] = t
      found[#found + 1] = string.lower(code)
      found[#found + 1] = code == string.lower(code) and text(id) or id
      if #found >= 3 * want then return {0, lowest, unpack(found)} end
    end
  end
  at = at + #chunk
end
return {0, lowest, unpack(found)}
