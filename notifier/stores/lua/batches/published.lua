-- Rows up to a count have their messages published (a broker other than this Redis). Never
-- makes a batch hash that is gone (expired) again, with nothing but this field.
--
-- KEYS[1] the batch     notifier:{s}:b:<id>
-- ARGV[1] rows published
--
-- Returns nothing.

if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'published', ARGV[1]) end
