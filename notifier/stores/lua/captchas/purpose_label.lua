-- The label a client's captcha purpose is counted under in /metrics: the purpose itself while
-- fewer than ARGV[2] of the client's purposes have one (the first that came), 'other' for any
-- past them. A purpose is whatever a client sends: counted as it is, one client's made-up
-- purposes would add series without end to every client's /metrics.
--
-- KEYS[1] the client's purposes that have a label   notifier:captcha_purposes:<client>
-- ARGV[1] the purpose
-- ARGV[2] how many purposes have a label at the most
--
-- Returns the label.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return ARGV[1] end
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  return ARGV[1]
end
return 'other'
