-- own: a partition's ownership under ordered consumption (a lease with a fencing token).
-- KEYS: fence owner
-- ARGV: consumer op leaseMs token
-- op 'acquire': take the partition if no one owns it (or the owner's lease ended), with a new
-- token (the counter only grows); an owner asking again keeps its token and renews.
-- op 'renew': extend the lease, if `consumer` still owns it under `token`.
-- op 'release': give it up, if `consumer` owns it under `token`.
-- Returns the token (acquire, renew), 1 (release), 0 when refused, -1 when the queue is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local now_ms = server_ms()
local held = redis.call('HMGET', KEYS[2], 'consumer', 'token', 'until')
local live = held[1] and tonumber(held[3]) >= now_ms
local op = ARGV[2]
if op == 'acquire' then
  if live and held[1] ~= ARGV[1] then return 0 end
  local token = tonumber(held[2])
  if not live then token = redis.call('HINCRBY', KEYS[2], 'token', 1) end
  redis.call('HSET', KEYS[2], 'consumer', ARGV[1], 'until', now_ms + tonumber(ARGV[3]))
  return token
end
if not (live and held[1] == ARGV[1] and held[2] == ARGV[4]) then return 0 end
if op == 'renew' then
  redis.call('HSET', KEYS[2], 'until', now_ms + tonumber(ARGV[3]))
  return tonumber(ARGV[4])
end
redis.call('HDEL', KEYS[2], 'consumer', 'until')
return 1
