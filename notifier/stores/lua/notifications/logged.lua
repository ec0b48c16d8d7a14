-- Index a new notification in the message log (see lib/message_log.lua): in the same
-- transaction as its record.
--
-- KEYS[1] its shard's log      notifier:{s}:log
-- KEYS[2] its client's         notifier:{s}:log:c:<client>
-- KEYS[3..] a bucket list a tag notifier:{s}:log:h:<bucket>
-- ARGV[1] the notification id
-- ARGV[2] its kind, as the store keeps it (mail, mail_captcha, sms_captcha, sms)
-- ARGV[3] the tags of its recipients and reference, 8 bytes each (keyed hashes)
-- ARGV[4] how long the entries are kept, seconds
--
-- Returns 1.
--#include lib/message_log.lua

log_add(KEYS, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
