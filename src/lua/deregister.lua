-- deregister: a consumer leaves its queue: its registration goes, and it leaves the group
-- unless it still holds deliveries (they stay pending until another consumer reclaims them).
-- KEYS: stream consumers
-- ARGV: group consumer
-- Returns 1 when it left the group, 0 when it stays in it for what it holds (or it was gone).
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
