-- idem_begin: before an idempotent consumer runs its handler, take the processing lease on the
-- delivery's idempotency key; unless the key is done already (the delivery is then acked here,
-- a duplicate), or another consumer holds its lease.
-- KEYS: stream marker
-- ARGV: group consumer entryId token leaseMs
-- marker: the key's state: 'd' once done (kept for the marker ttl), 'l <token>' while a
-- consumer holds its lease (for leaseMs, renewed by idem_extend.lua).
-- Returns {'acquired'}, {'duplicate'} (acked and deleted), {'busy', ms left of the other
-- lease}, or {'stale'} when the delivery is not this consumer's (nothing changed).
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return {'stale'} end
local state = redis.call('GET', KEYS[2])
if state == 'd' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  redis.call('XDEL', KEYS[1], ARGV[3])
  return {'duplicate'}
end
if state and state ~= 'l ' .. ARGV[4] then return {'busy', redis.call('PTTL', KEYS[2])} end
redis.call('SET', KEYS[2], 'l ' .. ARGV[4], 'PX', ARGV[5])
return {'acquired'}
