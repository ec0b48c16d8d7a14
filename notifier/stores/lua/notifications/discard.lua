-- Forget a notification that was never accepted (its message could not be queued), unless a
-- worker has it already: a publish whose confirm came late or never, though the broker took
-- the message, and a worker claimed it meanwhile. Then it stays, and the request was accepted
-- after all (deleted, its send would be recorded nowhere, and the caller's retry of its 503
-- would send it a second time).
--
-- KEYS[1] the record       notifier:{s}:n:<id>
-- KEYS[2] its payload      notifier:{s}:p:<id>
-- KEYS[3] the schedule     notifier:{s}:scheduled
-- KEYS[4] the open index   notifier:{s}:open
-- ARGV[1] the id
--
-- Returns 1 when forgotten (or not there), 0 when a worker has it. Past maxmemory too: it
-- frees memory, and a full Redis is one reason a publish fails (the record left behind, the
-- sweep would send what the caller was told was not accepted).
--#include lib/past_full.lua

past_full(KEYS[1])
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'queued' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2])
return 1
