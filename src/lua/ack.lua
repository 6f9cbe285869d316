-- ack: acknowledge and delete deliveries that this consumer still owns.
-- KEYS[1] stream   ARGV[1] group   ARGV[2] consumer   ARGV[3..] entry ids
-- Returns one integer per id: 1 acked, 0 not owned by this consumer (nothing changed).
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  out[#out + 1] = 0
  if owned(KEYS[1], ARGV[1], ARGV[2], id) then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    out[#out] = 1
  end
end
return out
