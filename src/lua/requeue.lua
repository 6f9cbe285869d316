-- requeue: give back an owned delivery with its redelivery count raised, the time it first
-- entered the queue kept (messageTtlMs counts from it) and, after a handler failure, that error
-- recorded: at the tail of the queue now, or parked in the delayed set until it is due.
-- KEYS: stream delayed delayedEntries stats
-- ARGV: group consumer entryId dueAtMs retryId lastError retry
-- delayed: the set of retry ids by due time; delayedEntries: retry id to packed entry.
-- stats: the partition's counters; `reappended` counts a requeue at the tail (not a publish);
-- `redelivered` counts the requeues that give the message another delivery (retry '1'): not
-- that of a delivery at the queue's delivery limit (retry '0'), which comes back only for the
-- next read to dead-letter it.
-- dueAtMs: 0 for now; retryId: the member of the delayed set; lastError: the handler's error
-- for F.lastError, or '' to keep the entry's own.
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
local new_error = ARGV[6] ~= ''
-- Same fields, the redelivery count raised, the first enqueue time kept and the new error in
-- place of the old one, body kept last.
local fields = {}
for i = 1, #src, 2 do
  if src[i] == F.body then
    fields[#fields + 1] = F.redeliveries
    fields[#fields + 1] = tostring(redeliveries + 1)
    fields[#fields + 1] = F.enqueuedAt
    fields[#fields + 1] = enqueued_at
    if new_error then
      fields[#fields + 1] = F.lastError
      fields[#fields + 1] = ARGV[6]
    end
  end
  local replaced = src[i] == F.lastError and new_error
  if src[i] ~= F.redeliveries and src[i] ~= F.enqueuedAt and not replaced then
    fields[#fields + 1] = src[i]
    fields[#fields + 1] = src[i + 1]
  end
end
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[4], 'redelivered', 1) end
if tonumber(ARGV[4]) == 0 then
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('HINCRBY', KEYS[4], 'reappended', 1)
else
  redis.call('HSET', KEYS[3], ARGV[5], cmsgpack.pack(fields))
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
end
return 1
