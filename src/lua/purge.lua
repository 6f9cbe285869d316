-- purge: delete up to `count` ready (never delivered) entries of a queue; entries that
-- consumers hold unacked are kept, as RabbitMQ's queue.purge keeps unacked messages.
-- KEYS: stream
-- ARGV: group count
-- Returns the number of entries deleted; the caller repeats until 0.
local ready = ready_entries(KEYS[1], ARGV[1], tonumber(ARGV[2]))
if #ready == 0 then return 0 end
local ids = {}
for i, entry in ipairs(ready) do ids[i] = entry[1] end
return redis.call('XDEL', KEYS[1], unpack(ids))
