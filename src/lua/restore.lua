-- restore: put an outbox entry back into its queue's stream as the entry it was: a message a
-- DLQ replay took that routes nowhere now goes back where it came from, instead of being lost.
-- KEYS: outbox stream
-- ARGV: entryId
-- Returns 'ok', or 'gone' when the entry is not there (another mover handled it).
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]
if not entry then return 'gone' end
local fields = entry[2]
-- The outbox's own fields come first (see lib/to_outbox.lua); the original follows F.route.
local original = {}
for i = 1, #fields - 1, 2 do
  if fields[i] == F.route then
    for j = i + 2, #fields do original[#original + 1] = fields[j] end
    break
  end
end
if #original > 0 then redis.call('XADD', KEYS[2], '*', unpack(original)) end
redis.call('XDEL', KEYS[1], ARGV[1])
return 'ok'
