-- dead_letter: move deliveries that this consumer owns from the queue to the queue's
-- dead-letter outbox (same slot), from where they are routed to the dead-letter exchange.
-- KEYS[1] stream   KEYS[2] outbox
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] reason   ARGV[4] time (ms)   ARGV[5..] entry ids
-- An outbox entry is 'dr' reason, 'dt' time, 'sid' source entry id, then the entry's own
-- fields (none when the entry's data was already gone).
-- Returns one integer per id: 1 moved, 0 not owned by this consumer (nothing changed).
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  out[#out + 1] = 0
  if owned(KEYS[1], ARGV[1], ARGV[2], id) then
    local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
    local fields = {'dr', ARGV[3], 'dt', ARGV[4], 'sid', id}
    if entry then
      for _, value in ipairs(entry[2]) do fields[#fields + 1] = value end
    end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    out[#out] = 1
  end
end
return out
