-- idem_commit: after idempotent handlers, in one step per delivery: apply the Redis writes the
-- handler recorded, mark its key done, ack the delivery. The commits of one tick go in one
-- call. A consumer that no longer owns a delivery or its key's lease (deposed: paused past its
-- lease, another took over) changes nothing of it. A write that Redis refuses (a wrong type)
-- cannot be undone once the writes before it ran: the key is then marked done all the same (so
-- that they are never applied twice) and the delivery is dead-lettered (reason 'rejected')
-- instead of acked.
-- KEYS: stream outbox stats markers... writeKeys...
-- ARGV: group consumer ttlMs timeMs lowestId highestId limit count commits...
-- stats: the partition's counters; `acked` counts the deliveries acked here, and a refused
-- commit's dead letter is counted as lib/to_outbox.lua says.
-- lowestId, highestId: the lowest and highest entry id of the call; limit: the most deliveries
-- the consumer may hold (they bound the ownership scan). count: how many
-- deliveries (and markers). writeKeys: the keys the writes touch, declared for
-- the server (a cluster-mode server needs them in the queue's slot). commits: per delivery its
-- entry id, its token and its number of writes, then per write its argument count, the command
-- and its arguments.
-- Returns per delivery three values: 'ok', 'stale' (nothing changed) or 'refused', then the
-- number of the refused write and Redis's error (0 and '' otherwise).
local count = tonumber(ARGV[8])
local commits, ids = {}, {}
local i = 9
for d = 1, count do
  local commit = {marker = KEYS[3 + d], entry = ARGV[i], token = ARGV[i + 1]}
  local writes = tonumber(ARGV[i + 2])
  i = i + 3
  commit.first = i
  for _ = 1, writes do i = i + tonumber(ARGV[i]) + 1 end
  commit.last = i
  commits[d], ids[d] = commit, commit.entry
end
local mine = owned_ids(KEYS[1], ARGV[1], ARGV[2], ids, ARGV[5], ARGV[6], tonumber(ARGV[7]))
-- Every marker in one read (a call carries at most a few hundred). Nothing below changes what
-- a later commit's check finds: tokens are per delivery, so of one key's commits only the
-- lease holder's passes, and handlers' writes are not to markers.
local states = redis.call('MGET', unpack(KEYS, 4, 3 + count))
local out, settled, acked = {}, {}, 0
for d, commit in ipairs(commits) do
  if not mine[commit.entry] or states[d] ~= 'l ' .. commit.token then
    out[#out + 1], out[#out + 2], out[#out + 3] = 'stale', 0, ''
  else
    local w, n, refused = commit.first, 0, nil
    -- A write that cannot even be called (more arguments than unpack takes) is refused as Redis
    -- refuses one: it must not abort the commits of the other deliveries of the call.
    local called, raised = pcall(function()
      while w < commit.last do
        local argc = tonumber(ARGV[w])
        n = n + 1
        local reply = redis.pcall(unpack(ARGV, w + 1, w + argc))
        if type(reply) == 'table' and reply.err then
          refused = reply.err
          return
        end
        w = w + argc + 1
      end
    end)
    if not called then refused = tostring(raised) end
    redis.call('SET', commit.marker, 'd', 'PX', ARGV[3])
    if refused then
      local stored = redis.call('XRANGE', KEYS[1], commit.entry, commit.entry)[1]
      to_outbox(KEYS[2], KEYS[3], 'rejected', ARGV[4], commit.entry, stored and stored[2] or {})
      out[#out + 1], out[#out + 2], out[#out + 3] = 'refused', n, refused
    else
      out[#out + 1], out[#out + 2], out[#out + 3] = 'ok', 0, ''
      acked = acked + 1
    end
    settled[#settled + 1] = commit.entry
  end
end
-- One XACK and one XDEL for every delivery settled (a call carries at most a few hundred).
if #settled > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(settled))
  redis.call('XDEL', KEYS[1], unpack(settled))
end
if acked > 0 then redis.call('HINCRBY', KEYS[3], 'acked', acked) end
return out
