-- Library: where a key lives, as notifier.stores.slots says (a test holds the two to one rule).
-- For the scripts that find a batch from a row's record, or a row's shard from its id.
--
-- shard(id)           the id's first character when it is a hex digit, else '0'
-- in_shard(id, name)  key `name` in the shard of `id`: notifier:{<shard>}:<name>

local function shard(id)
  local c = string.sub(id, 1, 1)
  if c ~= '' and string.find('0123456789abcdef', c, 1, true) then return c end
  return '0'
end

local function in_shard(id, name) return 'notifier:{' .. shard(id) .. '}:' .. name end
