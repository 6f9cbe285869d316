-- publish: append messages to their target queues, deduplicated and bounded, if the fence of
-- every target queue is at or below the topology version the producer routed with.
-- KEYS: queues... dedupSlots... guards...
-- ARGV: version plan...
--
-- KEYS: per target queue, in plan order, its stream, fence, dead-letter outbox and stats; then per
-- dedup group (a queue and a window), slot 0 and slot 1. On a cluster-mode server every key of
-- one call is in one queue's slot; on a standalone server one call may cover several queues.
-- guards: on a cluster-mode server, the queue's slot guard, a key never written and never read
-- here: while the slot migrates, Redis refuses the call (TRYAGAIN) rather than run it on the
-- importing node, so that the node the producer WAITs on is the one that took the write.
-- ARGV: the version; then the plan as plain arguments (no JSON to decode): the consumer group,
-- its holder of released deliveries, atomic (1 or 0), touch (1 or 0); the number of queues and
-- per queue its max length (-1 for none) and overflow; the number of dedup groups and per group
-- its queue index and window (ms); the number of messages and per message its dedup key, the
-- message id kept in markers ('' when it is the dedup key), its number of targets and per
-- target a queue index and a group index (0: no dedup), then its number of XADD field/value
-- items and the items, which go into XADD as they came (no decoding on either side).
--
-- Fence: a copy of the topology version in the queue's slot, raised by every topology change
-- before it resolves. A fence above the version means the producer routed with a topology
-- that is out of date; a missing fence means the queue is gone. Either way nothing is written.
--
-- Dedup markers: per queue and window w, two hashes (slots 0 and 1) of dedup key to marker
-- (the stream id of the copy in that queue, or 'streamId messageId' when the message id is not
-- the dedup key). Server time falls in bucket b = floor(now / w); bucket b writes to slot b % 2,
-- which expires at (b + 2) * w, and a lookup reads buckets b and b - 1: a repeat within w of the
-- first publish is always found, none is found after 2w. Field '' holds the slot's bucket.
--
-- Overflow of a queue at its max length (ready messages): 'reject-publish' refuses the message;
-- 'reject-publish-dlx' refuses it and dead-letters it from that queue ('maxlen'); 'drop-head'
-- dead-letters the oldest ready messages to make room ('maxlen'), into the queue's outbox. Only
-- these overflow branches touch the stats hash (the dead letters' count, see lib/to_outbox.lua):
-- a publish that fits writes nothing but its entry and its dedup marker.
--
-- Returns {'stale', queue index} (fence above the version) or {'nofence', queue index} (fence
-- missing), with nothing written,
-- {'full', message, target} when an atomic call meets a full target (nothing written), or 'ok'
-- followed by, per message: 'new' and one stream id per target; 'dup' and per target the marker
-- found or the id of a copy filled in now; 'full' and the position of a target without room.
local version = tonumber(ARGV[1])
local consumer_group, released = ARGV[2], ARGV[3]
local atomic, touch = ARGV[4] == '1', ARGV[5] == '1'
local CHUNK = 1000 -- items per variadic call (unpack has a stack limit)
local cursor = 7
local nqueues = tonumber(ARGV[6])
local queues = {}
for q = 1, nqueues do
  queues[q] = {tonumber(ARGV[cursor]), ARGV[cursor + 1]}
  cursor = cursor + 2
end
local groups_in = {}
for g = 1, tonumber(ARGV[cursor]) do
  groups_in[g] = {tonumber(ARGV[cursor + 2 * g - 1]), tonumber(ARGV[cursor + 2 * g])}
end
cursor = cursor + 1 + 2 * #groups_in
-- Per message {dedup key, kept id, q1, g1, q2, g2, ...}, and where its XADD items are in ARGV:
-- first[m] to last[m].
local messages, first, last = {}, {}, {}
local nmessages = tonumber(ARGV[cursor])
cursor = cursor + 1
for m = 1, nmessages do
  local message = {ARGV[cursor], ARGV[cursor + 1]}
  local ntargets = tonumber(ARGV[cursor + 2])
  cursor = cursor + 3
  for i = 1, 2 * ntargets do message[i + 2] = tonumber(ARGV[cursor + i - 1]) end
  cursor = cursor + 2 * ntargets
  messages[m] = message
  first[m] = cursor + 1
  last[m] = cursor + tonumber(ARGV[cursor])
  cursor = last[m] + 1
end

local function stream(q) return KEYS[4 * q - 3] end
local function outbox(q) return KEYS[4 * q - 1] end
local function stats(q) return KEYS[4 * q] end

for q = 1, nqueues do
  local fence = redis.call('GET', KEYS[4 * q - 2])
  if not fence then return {'nofence', q} end
  if tonumber(fence) > version then return {'stale', q} end
end

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- Per group: bucket, current and previous slot keys, keys to look up, markers found or
-- planned (false: absent; a number: the message of this call that writes it), new markers.
local groups = {}
for g, spec in ipairs(groups_in) do
  local window = spec[2]
  local bucket = math.floor(now_ms / window)
  local slot = 4 * nqueues + 2 * g - 1 + bucket % 2
  groups[g] = {
    window = window, bucket = bucket,
    current = KEYS[slot], previous = KEYS[slot + 1 - 2 * (bucket % 2)],
    lookup = {}, state = {}, writes = {},
  }
end

-- Ready messages of a bounded queue: entries minus deliveries not yet acked (acked entries are
-- deleted; those given back in place, pending for released, are ready), plus the copies
-- this call has planned so far.
local ready = {}
local function ready_count(q)
  if ready[q] == nil then
    local pending = redis.pcall('XPENDING', stream(q), consumer_group)
    local unacked = 0
    if type(pending) == 'table' and type(pending[1]) == 'number' then
      unacked = pending[1]
      for _, holder in ipairs(pending[4] or {}) do
        if holder[1] == released then unacked = unacked - tonumber(holder[2]) end
      end
    end
    ready[q] = redis.call('XLEN', stream(q)) - unacked
  end
  return ready[q]
end

local function max_length(q) return queues[q][1] end
local function overflow(q) return queues[q][2] end

-- Whether queue q takes one more copy; 'drop-head' always does, by making room.
local function has_room(q)
  return max_length(q) < 0 or overflow(q) == 'drop-head' or ready_count(q) < max_length(q)
end

-- Before a copy goes into a 'drop-head' queue at its limit: move its oldest ready messages to
-- its outbox until there is room. level[q]: ready messages now, counted once, then tracked.
local level = {}
local function make_room(q)
  if level[q] == nil then
    ready[q] = nil
    level[q] = ready_count(q)
  end
  while level[q] >= max_length(q) do
    local oldest = ready_entries(stream(q), consumer_group, 1)[1]
    if not oldest then break end
    to_outbox(outbox(q), stats(q), 'maxlen', now_ms, oldest[1], oldest[2])
    redis.call('XDEL', stream(q), oldest[1])
    level[q] = level[q] - 1
  end
  level[q] = level[q] + 1
end

-- A message: {dedup key, kept id, q1, g1, q2, g2, ...}; its targets are the (q, g) pairs.
local function targets(m) return (#messages[m] - 2) / 2 end
local function target(m, t) return messages[m][1 + 2 * t], messages[m][2 + 2 * t] end

for m = 1, #messages do
  for t = 1, targets(m) do
    local _, g = target(m, t)
    if g > 0 then table.insert(groups[g].lookup, messages[m][1]) end
  end
end

-- Look up: a slot counts only if it holds the bucket expected of it. Returns whether it does.
local function read_slot(slot, bucket, lookup, state)
  local holds = false
  for i = 1, #lookup, CHUNK do
    local stop = math.min(i + CHUNK - 1, #lookup)
    local values = redis.call('HMGET', slot, '', unpack(lookup, i, stop))
    if tonumber(values[1]) == bucket then
      holds = true
      for j = i, stop do
        if values[j - i + 2] then state[lookup[j]] = values[j - i + 2] end
      end
    end
  end
  return holds
end
for _, group in ipairs(groups) do
  read_slot(group.previous, group.bucket - 1, group.lookup, group.state)
  group.current_holds = read_slot(group.current, group.bucket, group.lookup, group.state)
end

-- Phase 1, nothing written: which targets need a copy, and is there room for it?
local full = {}
for m = 1, #messages do
  local key = messages[m][1]
  for t = 1, targets(m) do
    local q, g = target(m, t)
    if not (g > 0 and groups[g].state[key]) and not has_room(q) then
      full[m] = t
      break
    end
  end
  if full[m] then
    if atomic then return {'full', m, full[m]} end
  else
    for t = 1, targets(m) do
      local q, g = target(m, t)
      if not (g > 0 and groups[g].state[key]) then
        if max_length(q) >= 0 and ready[q] then ready[q] = ready[q] + 1 end
        if g > 0 then groups[g].state[key] = m end
      end
    end
  end
end

-- Phase 2: append, and collect the new markers.
local out = {'ok'}
local duplicates = false
for m = 1, #messages do
  if full[m] then
    out[#out + 1] = 'full'
    out[#out + 1] = full[m]
    local q = target(m, full[m])
    if overflow(q) == 'reject-publish-dlx' then
      to_outbox(outbox(q), stats(q), 'maxlen', now_ms, '', {unpack(ARGV, first[m], last[m])})
    end
  else
    local key, kept_id = messages[m][1], messages[m][2]
    local status = #out + 1
    out[status] = 'new'
    for t = 1, targets(m) do
      local q, g = target(m, t)
      local found = g > 0 and groups[g].state[key]
      if type(found) == 'string' then
        out[status] = 'dup'
        out[#out + 1] = found
        duplicates = true
      else
        local bounded_drop = overflow(q) == 'drop-head' and max_length(q) >= 0
        if bounded_drop then make_room(q) end
        local id = redis.call('XADD', stream(q), '*', unpack(ARGV, first[m], last[m]))
        out[#out + 1] = id
        -- A drop-head queue of max length 0 holds nothing: the copy is its own oldest message.
        if bounded_drop and max_length(q) == 0 then
          to_outbox(outbox(q), stats(q), 'maxlen', now_ms, id, {unpack(ARGV, first[m], last[m])})
          redis.call('XDEL', stream(q), id)
          level[q] = 0
        end
        if g > 0 then
          local marker = id
          if kept_id ~= '' then marker = id .. ' ' .. kept_id end
          groups[g].state[key] = marker
          table.insert(groups[g].writes, key)
          table.insert(groups[g].writes, marker)
        end
      end
    end
  end
end

-- Record into a group's current slot. A slot that does not hold the current bucket yet (the
-- lookup read its bucket field) is emptied, given the bucket and its expiry first; with no
-- markers, this only rewrites the slot's bucket, which is still a write.
local function record(group, markers)
  if not group.current_holds or #markers == 0 then
    if not group.current_holds then redis.call('DEL', group.current) end
    redis.call('HSET', group.current, '', group.bucket)
    redis.call('PEXPIREAT', group.current, (group.bucket + 2) * group.window)
    group.current_holds = true
  end
  for i = 1, #markers, 2 * CHUNK do
    redis.call('HSET', group.current, unpack(markers, i, math.min(i + 2 * CHUNK - 1, #markers)))
  end
end
local wrote = false
for _, group in ipairs(groups) do
  if #group.writes > 0 then
    record(group, group.writes)
    wrote = true
  end
end
-- Any write moves this connection's replication offset past the copies the duplicates found, so
-- that a WAIT / WAITAOF sent after this call covers them.
if touch and duplicates and not wrote then record(groups[1], {}) end
return out
