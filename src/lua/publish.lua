-- publish: append messages to their target queues, deduplicated and bounded, if the topology
-- is still at the version the producer routed with (else nothing is written).
--
-- Dedup markers: per queue and dedup window w, two hashes (slots 0 and 1) of dedup key to
-- marker (the stream id of the copy in that queue, or 'streamId messageId' when the message id
-- is not the dedup key). Server time falls in bucket b = floor(now / w); bucket b writes to
-- slot b % 2, which expires at (b + 2) * w, and a lookup reads buckets b and b - 1: a repeat
-- within w of the first publish is always found, none is found after 2w. Field '' holds the
-- slot's bucket, so that a slot left over from an older bucket is never read as current.
--
-- KEYS[1]              topology version counter
-- KEYS[2..Q+1]         target streams, each once
-- KEYS[Q+2..Q+1+2G]    per dedup group (a queue and a window): slot 0, slot 1
-- KEYS[Q+2+2G..]       the queues' dead-letter outboxes, in queue order
-- ARGV[1] expected topology version   ARGV[2] Q   ARGV[3] G   ARGV[4] consumer group
-- ARGV[5] '1': all or nothing (atomic batch)
-- ARGV[6] '1': make a write even when only duplicates are found, so that a WAIT / WAITAOF
--         sent after this call on the same connection covers the copies they point to
-- then per queue (Q times): max length (0: unbounded), overflow policy
-- then per group (G times): queue index, window ms
-- then the number of messages M and per message: T, T pairs (queue index, group index or 0
--   for no dedup), dedup key, message id to keep in the markers ('' when it is the dedup key),
--   the XADD field/value items packed as msgpack raws (cmsgpack.unpack returns them all)
--
-- Returns {'stale', version}, or {'full', message position, target position} when an atomic
-- call meets a full target (nothing written), or 'ok' followed by, per message:
--   'new', one stream id per target;
--   'dup', per target the marker found, or the stream id of a copy filled in now (a target
--     that lacked the message);
--   'full', the position of a target without room (nothing written for that message).
--
-- Overflow of a queue at its max length (ready messages): 'reject-publish' refuses the
-- message; 'reject-publish-dlx' refuses it and dead-letters it from that queue ('maxlen');
-- 'drop-head' makes room by dead-lettering the oldest ready messages ('maxlen'). Dead letters
-- go to the queue's outbox here; the producer's relay routes them to the dead-letter exchange.
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[1] then return {'stale', version} end

local nqueues, ngroups = tonumber(ARGV[2]), tonumber(ARGV[3])
local consumer_group = ARGV[4]
local atomic = ARGV[5] == '1'
local touch = ARGV[6] == '1'
local CHUNK = 1000 -- items per variadic call (unpack has a stack limit)

local a = 7
local max_length, overflow = {}, {}
for q = 1, nqueues do
  max_length[q] = tonumber(ARGV[a])
  overflow[q] = ARGV[a + 1]
  a = a + 2
end

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- Per group: bucket, current and previous slot keys, keys to look up, markers found or
-- planned (false: absent; a number: the message of this call that writes it), new markers.
local groups = {}
for g = 1, ngroups do
  local window = tonumber(ARGV[a + 1])
  local bucket = math.floor(now_ms / window)
  local slot = nqueues + 2 * g + bucket % 2
  groups[g] = {
    window = window, bucket = bucket,
    current = KEYS[slot], previous = KEYS[slot + 1 - 2 * (bucket % 2)],
    lookup = {}, state = {}, writes = {},
  }
  a = a + 2
end

-- Ready messages of a bounded queue: entries minus deliveries not yet acked (acked entries are
-- deleted), plus the copies this call has planned so far.
local ready = {}
local function ready_count(q)
  if ready[q] == nil then
    local pending = redis.pcall('XPENDING', KEYS[q + 1], consumer_group)
    local unacked = 0
    if type(pending) == 'table' and type(pending[1]) == 'number' then unacked = pending[1] end
    ready[q] = redis.call('XLEN', KEYS[q + 1]) - unacked
  end
  return ready[q]
end

-- Whether queue q takes one more copy; 'drop-head' always does, by making room.
local function has_room(q)
  return max_length[q] == 0 or overflow[q] == 'drop-head' or ready_count(q) < max_length[q]
end

local function outbox(q)
  return KEYS[1 + nqueues + 2 * ngroups + q]
end

-- Before a copy goes into a 'drop-head' queue at its limit: move its oldest ready messages to
-- its outbox until there is room. level[q]: ready messages now, counted once, then tracked.
local level = {}
local function make_room(q)
  if level[q] == nil then
    ready[q] = nil
    level[q] = ready_count(q)
  end
  while level[q] >= max_length[q] do
    local oldest = ready_entries(KEYS[q + 1], consumer_group, 1)[1]
    if not oldest then break end
    to_outbox(outbox(q), 'maxlen', now_ms, oldest[1], oldest[2])
    redis.call('XDEL', KEYS[q + 1], oldest[1])
    level[q] = level[q] - 1
  end
  level[q] = level[q] + 1
end

-- Parse: where each message starts; the dedup keys to look up per group.
local nmessages = tonumber(ARGV[a])
a = a + 1
local at = {}
for m = 1, nmessages do
  at[m] = a
  local ntargets = tonumber(ARGV[a])
  local key = ARGV[a + 2 * ntargets + 1]
  for t = 1, ntargets do
    local g = tonumber(ARGV[a + 2 * t])
    if g > 0 then table.insert(groups[g].lookup, key) end
  end
  a = a + 2 * ntargets + 4
end

-- Look up: a slot counts only if it holds the bucket expected of it.
local function read_slot(slot, bucket, lookup, state)
  for i = 1, #lookup, CHUNK do
    local last = math.min(i + CHUNK - 1, #lookup)
    local values = redis.call('HMGET', slot, '', unpack(lookup, i, last))
    if tonumber(values[1]) == bucket then
      for j = i, last do
        if values[j - i + 2] then state[lookup[j]] = values[j - i + 2] end
      end
    end
  end
end
for _, group in ipairs(groups) do
  read_slot(group.previous, group.bucket - 1, group.lookup, group.state)
  read_slot(group.current, group.bucket, group.lookup, group.state)
end

-- Phase 1, nothing written: which targets need a copy, and is there room for it?
local full = {}
for m = 1, nmessages do
  a = at[m]
  local ntargets = tonumber(ARGV[a])
  local key = ARGV[a + 2 * ntargets + 1]
  for t = 1, ntargets do
    local g = tonumber(ARGV[a + 2 * t])
    if not (g > 0 and groups[g].state[key]) and not has_room(tonumber(ARGV[a + 2 * t - 1])) then
      full[m] = t
      break
    end
  end
  if full[m] then
    if atomic then return {'full', m, full[m]} end
  else
    for t = 1, ntargets do
      local q, g = tonumber(ARGV[a + 2 * t - 1]), tonumber(ARGV[a + 2 * t])
      if not (g > 0 and groups[g].state[key]) then
        if max_length[q] > 0 and ready[q] then ready[q] = ready[q] + 1 end
        if g > 0 then groups[g].state[key] = m end
      end
    end
  end
end

-- Phase 2: append, and collect the new markers.
local out = {'ok'}
local duplicates = false
for m = 1, nmessages do
  a = at[m]
  local ntargets = tonumber(ARGV[a])
  if full[m] then
    out[#out + 1] = 'full'
    out[#out + 1] = full[m]
    local q = tonumber(ARGV[a + 2 * full[m] - 1])
    if overflow[q] == 'reject-publish-dlx' then
      to_outbox(outbox(q), 'maxlen', now_ms, '', {cmsgpack.unpack(ARGV[a + 2 * ntargets + 3])})
    end
  else
    local key = ARGV[a + 2 * ntargets + 1]
    local stored_id = ARGV[a + 2 * ntargets + 2]
    local fields = ARGV[a + 2 * ntargets + 3]
    local status = #out + 1
    out[status] = 'new'
    for t = 1, ntargets do
      local q, g = tonumber(ARGV[a + 2 * t - 1]), tonumber(ARGV[a + 2 * t])
      local found = g > 0 and groups[g].state[key]
      if type(found) == 'string' then
        out[status] = 'dup'
        out[#out + 1] = found
        duplicates = true
      else
        if overflow[q] == 'drop-head' and max_length[q] > 0 then make_room(q) end
        local id = redis.call('XADD', KEYS[q + 1], '*', cmsgpack.unpack(fields))
        out[#out + 1] = id
        if g > 0 then
          local marker = id
          if stored_id ~= '' then marker = id .. ' ' .. stored_id end
          groups[g].state[key] = marker
          table.insert(groups[g].writes, key)
          table.insert(groups[g].writes, marker)
        end
      end
    end
  end
end

-- Record into a group's current slot (emptied first if it held an older bucket); with no
-- markers, this only rewrites the slot's bucket, which is still a write.
local function record(group, markers)
  if tonumber(redis.call('HGET', group.current, '')) ~= group.bucket then
    redis.call('DEL', group.current)
  end
  redis.call('HSET', group.current, '', group.bucket)
  for i = 1, #markers, 2 * CHUNK do
    redis.call('HSET', group.current, unpack(markers, i, math.min(i + 2 * CHUNK - 1, #markers)))
  end
  redis.call('PEXPIREAT', group.current, (group.bucket + 2) * group.window)
end
local wrote = false
for _, group in ipairs(groups) do
  if #group.writes > 0 then
    record(group, group.writes)
    wrote = true
  end
end
-- Any write moves this connection's replication offset past the copies the duplicates found.
if touch and duplicates and not wrote then record(groups[1], {}) end
return out
