-- requeue: give back an owned delivery with its redelivery count raised: at the tail of
-- the queue now, or parked in the delayed set until it is due.
-- KEYS[1] stream   KEYS[2] delayed set   KEYS[3] delayed entries hash
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] entry id   ARGV[4] due time (ms, 0 = now)
-- ARGV[5] retry id (member of the delayed set)
-- ARGV[6] '1' to count the delivery (raise 'rc'); '0' gives back an entry that was read but
--         never handed to a handler
-- Returns 1, or 0 when the entry is not owned by this consumer (nothing changed).
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if not entry then return 1 end
local src = entry[2]
local redeliveries = 0
for i = 1, #src, 2 do
  if src[i] == 'rc' then redeliveries = tonumber(src[i + 1]) end
end
-- Same fields, 'rc' raised, body kept last.
local fields = {}
for i = 1, #src, 2 do
  if src[i] == 'b' then
    fields[#fields + 1] = 'rc'
    fields[#fields + 1] = tostring(redeliveries + tonumber(ARGV[6]))
  end
  if src[i] ~= 'rc' then
    fields[#fields + 1] = src[i]
    fields[#fields + 1] = src[i + 1]
  end
end
if tonumber(ARGV[4]) == 0 then
  redis.call('XADD', KEYS[1], '*', unpack(fields))
else
  redis.call('HSET', KEYS[3], ARGV[5], cmsgpack.pack(fields))
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
end
return 1
