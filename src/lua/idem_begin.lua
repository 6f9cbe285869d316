-- idem_begin: before an idempotent consumer runs its handlers, take the processing lease on
-- each delivery's idempotency key; unless the key is done already (the delivery is then acked
-- here, a duplicate), or another consumer holds its lease. The deliveries of one tick go in
-- one call, one after the other (two of one key: the second finds the first's lease).
-- KEYS: stream stats markers...
-- ARGV: group consumer leaseMs lowestId highestId limit entries...
-- stats: the partition's counters; `acked` counts the duplicates acked here.
-- markers: per delivery its key's state: 'd' once done (kept for the marker ttl), 'l <token>'
-- while a consumer holds its lease (for leaseMs, renewed by idem_extend.lua). lowestId,
-- highestId: the lowest and highest entry id of the call; limit: the most deliveries the
-- consumer may hold (they bound the ownership scan). entries: per delivery its entry id and its
-- token.
-- Returns per delivery two values: 'acquired', 'duplicate' (acked and deleted), 'busy' or
-- 'stale' (the delivery is not this consumer's: nothing changed); then the ms left of the other
-- lease when busy, else 0.
local ids = {}
for d = 1, #KEYS - 2 do ids[d] = ARGV[5 + 2 * d] end
local mine = owned_ids(KEYS[1], ARGV[1], ARGV[2], ids, ARGV[4], ARGV[5], tonumber(ARGV[6]))
-- Every marker in one read (a call carries at most a few hundred); `taken` has the leases
-- this call took, which a later delivery of the same key must find.
local states, taken = redis.call('MGET', unpack(KEYS, 3)), {}
local out, duplicates = {}, {}
for d = 1, #KEYS - 2 do
  local marker, entry, token = KEYS[2 + d], ids[d], ARGV[6 + 2 * d]
  local kind, left = 'acquired', 0
  if not mine[entry] then
    kind = 'stale'
  else
    local state = taken[marker] or states[d]
    if state == 'd' then
      duplicates[#duplicates + 1] = entry
      kind = 'duplicate'
    elseif state and state ~= 'l ' .. token then
      kind, left = 'busy', redis.call('PTTL', marker)
    else
      taken[marker] = 'l ' .. token
      redis.call('SET', marker, taken[marker], 'PX', ARGV[3])
    end
  end
  out[#out + 1] = kind
  out[#out + 1] = left
end
if #duplicates > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(duplicates))
  redis.call('XDEL', KEYS[1], unpack(duplicates))
  redis.call('HINCRBY', KEYS[2], 'acked', #duplicates)
end
return out
