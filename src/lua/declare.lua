-- declare: create an exchange or queue record, or confirm an identical one exists.
-- KEYS[1] topology hash (exchanges or queues)   KEYS[2] topology version counter
-- ARGV[1] name   ARGV[2] canonical JSON record
-- Returns {'ok', version} when created, {'ok', 0} when an identical record exists,
-- {'precondition', existingRecord} when a different record exists (nothing changes).
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  if existing == ARGV[2] then return {'ok', 0} end
  return {'precondition', existing}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {'ok', redis.call('INCR', KEYS[2])}
