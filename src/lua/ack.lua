-- ack: acknowledge and delete deliveries that this consumer still owns.
-- KEYS: stream owner stats
-- ARGV: group consumer lowestId highestId limit token ids...
-- limit: the most entries this consumer may hold between lowestId and highestId.
-- token '': no ownership to check; else (an ordered consumer) the consumer must own the
-- partition under it: a deposed owner settles nothing, and learns so (0 for every id) even
-- when the new owner has acked the entries already.
-- Ownership comes from one XPENDING over the batch's id range for this consumer (much
-- cheaper than one per id); if that answer may be cut short, ids it lacks are checked one
-- by one.
-- Returns 1 when every id was acked (the common case, kept cheap), else one integer per id:
-- 1 acked; 0 pending for another consumer (nothing changed); 2 pending for nobody: settled
-- already (an ack whose reply was lost and that ioredis sent again finds its own work done).
-- An entry acked before the call is always 2, never confused with one another consumer took.
-- stats: the partition's counters; `acked` counts the entries acked here.
if ARGV[6] ~= '' and not owns(KEYS[2], ARGV[2], ARGV[6], server_ms()) then
  local out = {}
  for i = 7, #ARGV do out[#out + 1] = 0 end
  return out
end
local limit = tonumber(ARGV[5])
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[4], limit, ARGV[2])
local mine = {}
for _, entry in ipairs(pending) do mine[entry[1]] = true end
local complete = #pending < limit
local out, acked = {}, {}
for i = 7, #ARGV do
  local id = ARGV[i]
  if mine[id] or (not complete and owned(KEYS[1], ARGV[1], ARGV[2], id)) then
    acked[#acked + 1] = id
    out[#out + 1] = 1
  elseif #redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1) == 0 then
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
-- One XACK and one XDEL per chunk (unpack is bounded by Lua's stack).
for first = 1, #acked, 1000 do
  local last = math.min(first + 999, #acked)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(acked, first, last))
  redis.call('XDEL', KEYS[1], unpack(acked, first, last))
end
if #acked > 0 then redis.call('HINCRBY', KEYS[3], 'acked', #acked) end
if #acked == #ARGV - 6 then return 1 end
return out
