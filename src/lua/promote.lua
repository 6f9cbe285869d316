-- promote: move due delayed retries back into the queue. Each move is one step inside
-- this script, so two consumers promoting at once never double a message, and a
-- promoter that dies loses nothing.
-- KEYS: stream delayed delayedEntries
-- ARGV: nowMs limit
-- limit: the most retries to move.
-- Returns {moved, due time of the next delayed retry or -1}.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, retry in ipairs(due) do
  local packed = redis.call('HGET', KEYS[3], retry)
  if packed then redis.call('XADD', KEYS[1], '*', unpack(cmsgpack.unpack(packed))) end
  redis.call('HDEL', KEYS[3], retry)
  redis.call('ZREM', KEYS[2], retry)
end
local upcoming = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {#due, upcoming[2] or '-1'}
