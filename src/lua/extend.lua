-- extend: renew the lease of deliveries this consumer still owns, so that a slow
-- handler's entries are not reclaimed while it works.
-- KEYS: stream
-- ARGV: group consumer ids...
-- XCLAIM with min idle 0 resets the idle time and JUSTID keeps the delivery count.
-- Returns one integer per id: 1 extended, 0 not owned.
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  out[#out + 1] = 0
  if owned(KEYS[1], ARGV[1], ARGV[2], id) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    out[#out] = 1
  end
end
return out
