-- Library: a notification's timeline, kept in its record (so it lives and dies with it): the
-- last 20 events, each a field 'e0'..'e19' in turn ('en' counts them), one line
--   <unix seconds, 3 decimals>|<what>|<provider>|<detail>|<outcome>
-- cut to 64 bytes, so the record stays as compact as Redis keeps a small hash (its
-- hash-max-listpack-value). Never content, codes or recipients: a status, a provider, an HTTP
-- status, a count. Read by notifier.services.message_log.timeline.
--
-- noted(record, what, provider, detail, outcome)  add an event to a record that exists.

-- The first ``limit`` bytes of ``line``, never half a character: cut inside a UTF-8 sequence (a
-- mail server's reply in Chinese, in an attempt's outcome), the line held bytes no reader can
-- decode, and every read of the record failed. A continuation byte (10xxxxxx) just past the cut
-- means a character straddles it: the cut moves back to before that character.
local function cut(line, limit)
  if #line <= limit then return line end
  local n = limit
  while n > 0 do
    local next_byte = string.byte(line, n + 1)
    if next_byte < 0x80 or next_byte >= 0xC0 then break end
    n = n - 1
  end
  return string.sub(line, 1, n)
end

local function noted(record, what, provider, detail, outcome)
  local clock = redis.call('TIME')
  local line = clock[1] .. '.' .. string.format('%03d', math.floor(tonumber(clock[2]) / 1000))
    .. '|' .. what .. '|' .. (provider or '') .. '|' .. (detail or '') .. '|' .. (outcome or '')
  local n = redis.call('HINCRBY', record, 'en', 1)
  redis.call('HSET', record, 'e' .. ((n - 1) % 20), cut(line, 64))
end
