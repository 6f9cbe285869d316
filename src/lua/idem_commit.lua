-- idem_commit: after an idempotent consumer's handler, in one step: apply the Redis writes the
-- handler recorded, mark its key done, ack the delivery. A consumer that no longer owns the
-- delivery or the key's lease (deposed: paused past its lease, another took over) changes
-- nothing. A write that Redis refuses (a wrong type) cannot be undone once the writes before it
-- ran: the key is then marked done all the same (so that they are never applied twice) and the
-- delivery is dead-lettered (reason 'rejected') instead of acked.
-- KEYS: stream outbox marker writeKeys...
-- ARGV: group consumer entryId token ttlMs timeMs writes...
-- writeKeys: the keys the writes touch, declared for the server (a cluster-mode server needs
-- them in the queue's slot). writes: per write its argument count, then the command and its
-- arguments.
-- Returns {'ok'}, {'stale'} (nothing changed), or {'refused', write number, Redis's error}.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return {'stale'} end
if redis.call('GET', KEYS[3]) ~= 'l ' .. ARGV[4] then return {'stale'} end
local i, n, refused = 7, 0, nil
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  n = n + 1
  local reply = redis.pcall(unpack(ARGV, i + 1, i + count))
  if type(reply) == 'table' and reply.err then
    refused = reply.err
    break
  end
  i = i + count + 1
end
redis.call('SET', KEYS[3], 'd', 'PX', ARGV[5])
if refused then
  local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1]
  to_outbox(KEYS[2], 'rejected', ARGV[6], ARGV[3], entry and entry[2] or {})
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if refused then return {'refused', n, refused} end
return {'ok'}
