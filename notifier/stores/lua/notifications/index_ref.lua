-- Index a provider's message id under the notification it belongs to, for its receipts to find:
-- written with the outcome of the send, so a full Redis writes it too (see lib/past_full.lua:
-- the DEL first needs no memory).
--
-- KEYS[1] the index          notifier:ref:<provider>:<ref>
-- ARGV[1] the notification id
-- ARGV[2] how long it is kept, seconds
--
-- Returns 1.

redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
