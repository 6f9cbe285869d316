-- declare: create an exchange or queue record, or confirm an identical one exists.
-- KEYS: records version
-- ARGV: name record
-- records: the topology hash of exchanges or of queues; record: the canonical JSON record.
-- Returns {'ok', version} when created, {'ok', 0} when an identical record exists,
-- {'precondition', existingRecord} when a different record exists (nothing changes).
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  if existing == ARGV[2] then return {'ok', 0} end
  return {'precondition', existing}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {'ok', redis.call('INCR', KEYS[2])}
