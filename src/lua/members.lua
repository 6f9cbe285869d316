-- members: an ordered consumer joins (or stays in) its queue's membership for `leaseMs` of
-- server time, and learns the live members in the order they joined: what partitions are
-- shared by (and what a single active consumer is chosen from).
-- KEYS: fence consumers members joined
-- ARGV: consumer leaseMs
-- consumers: every registered consumer of the queue (src/lua/register.lua); members: the
-- ordered ones, by when their membership ends; joined: when each joined.
-- Returns {'ok', names...} in join order, {'conflict', name} when a live consumer of the queue
-- is not ordered (it would read every partition past the owners), {'gone'} without the fence.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local now_ms = server_ms()
-- A member whose membership ended is gone (crashed, or frozen past it): its registration goes
-- too, or it would count as an unordered consumer until that ran out as well.
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now_ms)) do
  redis.call('ZREM', KEYS[3], name)
  redis.call('HDEL', KEYS[4], name)
  redis.call('ZREM', KEYS[2], name)
end
redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('HSETNX', KEYS[4], ARGV[1], now_ms)
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now_ms, '+inf')) do
  if not redis.call('ZSCORE', KEYS[3], name) then return {'conflict', name} end
end
local names = redis.call('ZRANGE', KEYS[3], 0, -1)
local since = {}
for _, name in ipairs(names) do since[name] = tonumber(redis.call('HGET', KEYS[4], name)) or now_ms end
table.sort(names, function(a, b)
  if since[a] ~= since[b] then return since[a] < since[b] end
  return a < b
end)
return {'ok', unpack(names)}
