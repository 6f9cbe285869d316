-- idem_commit: after idempotent handlers, in one step per delivery: apply the Redis writes the
-- handler recorded, mark its key done, ack the delivery. The commits of one tick go in one
-- call. A consumer that no longer owns a delivery or its key's lease (deposed: paused past its
-- lease, another took over) changes nothing of it. A write that Redis refuses (a wrong type)
-- cannot be undone once the writes before it ran: the key is then marked done all the same (so
-- that they are never applied twice) and the delivery is dead-lettered (reason 'rejected')
-- instead of acked.
-- KEYS: stream outbox markers... writeKeys...
-- ARGV: group consumer ttlMs timeMs count commits...
-- count: how many deliveries (and markers). writeKeys: the keys the writes touch, declared for
-- the server (a cluster-mode server needs them in the queue's slot). commits: per delivery its
-- entry id, its token and its number of writes, then per write its argument count, the command
-- and its arguments.
-- Returns per delivery three values: 'ok', 'stale' (nothing changed) or 'refused', then the
-- number of the refused write and Redis's error (0 and '' otherwise).
local out = {}
local i = 6
for d = 1, tonumber(ARGV[5]) do
  local marker, entry, token, writes = KEYS[2 + d], ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local first = i
  for _ = 1, writes do i = i + tonumber(ARGV[i]) + 1 end
  if not owned(KEYS[1], ARGV[1], ARGV[2], entry) or redis.call('GET', marker) ~= 'l ' .. token then
    out[#out + 1], out[#out + 2], out[#out + 3] = 'stale', 0, ''
  else
    local w, n, refused = first, 0, nil
    while w < i do
      local argc = tonumber(ARGV[w])
      n = n + 1
      local reply = redis.pcall(unpack(ARGV, w + 1, w + argc))
      if type(reply) == 'table' and reply.err then
        refused = reply.err
        break
      end
      w = w + argc + 1
    end
    redis.call('SET', marker, 'd', 'PX', ARGV[3])
    if refused then
      local stored = redis.call('XRANGE', KEYS[1], entry, entry)[1]
      to_outbox(KEYS[2], 'rejected', ARGV[4], entry, stored and stored[2] or {})
    end
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    if refused then
      out[#out + 1], out[#out + 2], out[#out + 3] = 'refused', n, refused
    else
      out[#out + 1], out[#out + 2], out[#out + 3] = 'ok', 0, ''
    end
  end
end
return out
