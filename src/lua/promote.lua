-- promote: move due delayed retries back into the queue. Each move is one step inside
-- this script, so two consumers promoting at once never double a message, and a
-- promoter that dies loses nothing.
-- KEYS: stream delayed delayedEntries stats
-- ARGV: nowMs limit
-- limit: the most retries to move. stats: the partition's counters; `reappended` counts the
-- retries moved (appended again, not published).
-- Returns {moved, due time of the next delayed retry or -1}.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local appended = 0
for _, retry in ipairs(due) do
  local packed = redis.call('HGET', KEYS[3], retry)
  if packed then
    redis.call('XADD', KEYS[1], '*', unpack(cmsgpack.unpack(packed)))
    appended = appended + 1
  end
  redis.call('HDEL', KEYS[3], retry)
  redis.call('ZREM', KEYS[2], retry)
end
if appended > 0 then redis.call('HINCRBY', KEYS[4], 'reappended', appended) end
local upcoming = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {#due, upcoming[2] or '-1'}
