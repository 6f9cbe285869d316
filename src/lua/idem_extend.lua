-- idem_extend: renew processing leases on idempotency keys of one queue while their handlers
-- run.
-- KEYS: markers...
-- ARGV: leaseMs tokens...
-- Returns per marker 1 when renewed, 0 when the lease was no longer this token's.
local out = {}
for i, marker in ipairs(KEYS) do
  out[i] = 0
  if redis.call('GET', marker) == 'l ' .. ARGV[i + 1] then
    redis.call('PEXPIRE', marker, ARGV[1])
    out[i] = 1
  end
end
return out
