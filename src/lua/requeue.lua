-- requeue: give back an owned delivery with its redelivery count raised and the time it first
-- entered the queue kept (messageTtlMs counts from it): at the tail of the queue now, or parked
-- in the delayed set until it is due.
-- KEYS: stream delayed delayedEntries
-- ARGV: group consumer entryId dueAtMs retryId
-- delayed: the set of retry ids by due time; delayedEntries: retry id to packed entry.
-- dueAtMs: 0 for now; retryId: the member of the delayed set.
-- Returns 1, or 0 when the entry is not owned by this consumer (nothing changed).
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if not entry then return 1 end
local src = entry[2]
local redeliveries = 0
-- When it first entered the queue: kept from an earlier requeue, else this entry's id time.
local enqueued_at = string.match(ARGV[3], '^(%d+)')
for i = 1, #src, 2 do
  if src[i] == F.redeliveries then redeliveries = tonumber(src[i + 1]) end
  if src[i] == F.enqueuedAt then enqueued_at = src[i + 1] end
end
-- Same fields, the redelivery count raised and the first enqueue time kept, body kept last.
local fields = {}
for i = 1, #src, 2 do
  if src[i] == F.body then
    fields[#fields + 1] = F.redeliveries
    fields[#fields + 1] = tostring(redeliveries + 1)
    fields[#fields + 1] = F.enqueuedAt
    fields[#fields + 1] = enqueued_at
  end
  if src[i] ~= F.redeliveries and src[i] ~= F.enqueuedAt then
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
