-- dead_letter: move deliveries that this consumer owns from the queue to the queue's
-- dead-letter outbox (same slot), from where they are routed to the dead-letter exchange.
-- KEYS: stream outbox owner stats
-- ARGV: group consumer reason timeMs lastError token ids...
-- lastError: '' or the last handler error of a message retried in place (an ordered consumer's),
-- which its entry does not carry: added to the copy's fields, for its death record.
-- token '': no partition ownership to check; else (an ordered consumer) nothing is moved unless
-- the consumer owns the partition under it.
-- stats: the partition's counters (see lib/to_outbox.lua).
-- Returns one integer per id: 1 moved, 0 not owned by this consumer (nothing changed).
local out = {}
local deposed = ARGV[6] ~= '' and not owns(KEYS[3], ARGV[2], ARGV[6], server_ms())
for i = 7, #ARGV do
  local id = ARGV[i]
  out[#out + 1] = 0
  if not deposed and owned(KEYS[1], ARGV[1], ARGV[2], id) then
    local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
    local fields = entry and entry[2] or {}
    if entry and ARGV[5] ~= '' then
      fields[#fields + 1] = F.lastError
      fields[#fields + 1] = ARGV[5]
    end
    to_outbox(KEYS[2], KEYS[4], ARGV[3], ARGV[4], id, fields)
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    out[#out] = 1
  end
end
return out
