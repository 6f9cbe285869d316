-- dead_letter: move deliveries that this consumer owns from the queue to the queue's
-- dead-letter outbox (same slot), from where they are routed to the dead-letter exchange.
-- KEYS: stream outbox
-- ARGV: group consumer reason timeMs ids...
-- Returns one integer per id: 1 moved, 0 not owned by this consumer (nothing changed).
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  out[#out + 1] = 0
  if owned(KEYS[1], ARGV[1], ARGV[2], id) then
    local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
    to_outbox(KEYS[2], ARGV[3], ARGV[4], id, entry and entry[2] or {})
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    out[#out] = 1
  end
end
return out
