-- idem_release: give up the processing lease on an idempotency key (the handler failed, or the
-- delivery was requeued or dead-lettered): the key is free for the next attempt, and no marker
-- is left.
-- KEYS: marker
-- ARGV: token
-- Returns 1, or 0 when the lease was not this token's any more (nothing changed).
if redis.call('GET', KEYS[1]) ~= 'l ' .. ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
