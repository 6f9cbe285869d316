-- purge: delete up to ARGV[2] ready (never delivered) entries of a queue; entries that
-- consumers hold unacked are kept, as RabbitMQ's queue.purge keeps unacked messages.
-- KEYS[1] stream   ARGV[1] group   ARGV[2] batch size
-- Returns the number of entries deleted; the caller repeats until 0.
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local last = nil
for _, g in ipairs(groups) do
  for i = 1, #g, 2 do
    if g[i] == 'name' and g[i + 1] == ARGV[1] then
      for j = 1, #g, 2 do
        if g[j] == 'last-delivered-id' then last = g[j + 1] end
      end
    end
  end
end
if not last then return 0 end
local ready = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', tonumber(ARGV[2]))
if #ready == 0 then return 0 end
local ids = {}
for i, entry in ipairs(ready) do ids[i] = entry[1] end
return redis.call('XDEL', KEYS[1], unpack(ids))
