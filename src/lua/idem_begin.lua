-- idem_begin: before an idempotent consumer runs its handlers, take the processing lease on
-- each delivery's idempotency key; unless the key is done already (the delivery is then acked
-- here, a duplicate), or another consumer holds its lease. The deliveries of one tick go in
-- one call, one after the other (two of one key: the second finds the first's lease).
-- KEYS: stream stats markers...
-- ARGV: group consumer leaseMs limit entries...
-- stats: the partition's counters; `acked` counts the duplicates acked here.
-- markers: per delivery its key's state: 'd' once done (kept for the marker ttl), 'l <token>'
-- while a consumer holds its lease (for leaseMs, renewed by idem_extend.lua). limit: the most
-- deliveries the consumer may hold (bounds the ownership scan). entries: per delivery its entry
-- id and its token.
-- Returns per delivery two values: 'acquired', 'duplicate' (acked and deleted), 'busy' or
-- 'stale' (the delivery is not this consumer's: nothing changed); then the ms left of the other
-- lease when busy, else 0.
local ids = {}
for d = 1, #KEYS - 2 do ids[d] = ARGV[3 + 2 * d] end
local mine = owned_ids(KEYS[1], ARGV[1], ARGV[2], ids, tonumber(ARGV[4]))
local out, duplicates = {}, {}
for d = 1, #KEYS - 2 do
  local marker, entry, token = KEYS[2 + d], ids[d], ARGV[4 + 2 * d]
  local kind, left = 'acquired', 0
  if not mine[entry] then
    kind = 'stale'
  else
    local state = redis.call('GET', marker)
    if state == 'd' then
      duplicates[#duplicates + 1] = entry
      kind = 'duplicate'
    elseif state and state ~= 'l ' .. token then
      kind, left = 'busy', redis.call('PTTL', marker)
    else
      redis.call('SET', marker, 'l ' .. token, 'PX', ARGV[3])
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
