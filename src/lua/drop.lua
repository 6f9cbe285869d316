-- drop: delete a dead letter that routes nowhere (its queue has no dead-letter exchange, or the
-- exchange routes it to no queue) from its queue's outbox, and count it, as RabbitMQ drops it.
-- KEYS: outbox stats
-- ARGV: entryId
-- stats: the partition's counters; `dropped` counts the entries deleted here.
-- Returns 'dropped', or 'gone' when the entry is not there (another mover handled it).
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 'gone' end
redis.call('HINCRBY', KEYS[2], 'dropped', 1)
return 'dropped'
