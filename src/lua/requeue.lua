-- requeue: put an owned delivery back at the tail of its queue with its redelivery
-- count raised, and remove the delivered entry, in one step.
-- KEYS[1] stream   ARGV[1] group   ARGV[2] consumer   ARGV[3] entry id
-- Returns the new entry id, or false when the entry is not owned by this consumer.
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #owned == 0 then return false end
local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if not entry then return false end
local src = entry[2]
local fields = {}
local redeliveries = 0
for i = 1, #src, 2 do
  if src[i] == 'rc' then redeliveries = tonumber(src[i + 1]) end
end
for i = 1, #src, 2 do
  if src[i] == 'b' then
    fields[#fields + 1] = 'rc'
    fields[#fields + 1] = tostring(redeliveries + 1)
  end
  if src[i] ~= 'rc' then
    fields[#fields + 1] = src[i]
    fields[#fields + 1] = src[i + 1]
  end
end
return redis.call('XADD', KEYS[1], '*', unpack(fields))
