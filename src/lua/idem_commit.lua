-- idem_commit: after an idempotent consumer's handler, in one step: apply the Redis writes the
-- handler recorded, mark its key done, ack the delivery. A consumer that no longer owns the
-- delivery or the key's lease (deposed: paused past its lease, another took over) changes
-- nothing. A write that Redis refuses (a wrong type) stops the script: the writes before it
-- stay, as with MULTI / EXEC, and the key is neither done nor the delivery acked.
-- KEYS: stream marker writeKeys...
-- ARGV: group consumer entryId token ttlMs writes...
-- writeKeys: the keys the writes touch, declared for the server (a cluster-mode server needs
-- them in the queue's slot). writes: per write its argument count, then the command and its
-- arguments.
-- Returns 'ok', or 'stale' (nothing changed).
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 'stale' end
if redis.call('GET', KEYS[2]) ~= 'l ' .. ARGV[4] then return 'stale' end
local i = 6
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + count))
  i = i + count + 1
end
redis.call('SET', KEYS[2], 'd', 'PX', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 'ok'
