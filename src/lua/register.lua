-- register: register (or renew) a consumer of a queue for `leaseMs` of server time, and forget
-- the consumers whose registration expired (crashed without deregistering): they stop counting
-- as the queue's consumers, and a consumer of the group that is registered no more leaves it
-- once it holds no delivery (what it held is reclaimed first).
-- KEYS: stream fence consumers members
-- ARGV: group consumer leaseMs mode
-- consumers: the sorted set of registered consumer names by the server time their lease ends;
-- members: the queue's ordered consumers (src/lua/members.lua). mode 'plain' is refused while
-- an ordered consumer lives: it would read every partition past their owners.
-- Returns 1, 0 when the queue is gone (its fence with it): nothing is written, or -1 when
-- refused.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local now_ms = server_ms()
if ARGV[4] == 'plain' and #redis.call('ZRANGEBYSCORE', KEYS[4], now_ms, '+inf', 'LIMIT', 0, 1) > 0 then
  return -1
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now_ms)
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending
  for i = 1, #info, 2 do
    if info[i] == 'name' then name = info[i + 1] end
    if info[i] == 'pending' then pending = info[i + 1] end
  end
  if pending == 0 and name ~= ARGV[2] and not redis.call('ZSCORE', KEYS[3], name) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
  end
end
redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[3]), ARGV[2])
return 1
