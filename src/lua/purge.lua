-- purge: delete up to `count` ready entries of a queue: never delivered, or given back in place
-- (pending for `holder`, see release.lua); entries that consumers hold unacked are kept, as
-- RabbitMQ's queue.purge keeps unacked messages.
-- KEYS: stream
-- ARGV: group count holder
-- Returns the number of entries removed; the caller repeats until 0.
local ids = {}
for _, entry in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[2]), ARGV[3])) do
  ids[#ids + 1] = entry[1]
end
if #ids > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
  return #ids
end
local ready = ready_entries(KEYS[1], ARGV[1], tonumber(ARGV[2]))
if #ready == 0 then return 0 end
for i, entry in ipairs(ready) do ids[i] = entry[1] end
return redis.call('XDEL', KEYS[1], unpack(ids))
