-- ack: acknowledge and delete deliveries that this consumer still owns.
-- KEYS[1] stream   ARGV[1] group   ARGV[2] consumer   ARGV[3..] entry ids
-- Ownership is checked per entry because XACK alone would also ack an entry that
-- another consumer has reclaimed in the meantime.
-- Returns one integer per id: 1 acked, 0 not owned by this consumer (nothing changed).
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2])
  if #owned == 1 then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
