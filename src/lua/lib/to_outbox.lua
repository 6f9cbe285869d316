-- to_outbox: add an entry to a queue's outbox: F.deathReason, F.deathTime (ms), F.sourceId (the
-- entry id it had in the queue), F.route ('' for the queue's dead-letter exchange, else where a
-- DLQ replay sends it), then the entry's own fields (none when its data was gone). The relay
-- routes it from there, in the queue's own slot until then.
-- stats: the partition's counters, whose `deadLettered:<reason>` counts the death here, where it
-- happens, whether or not the relay finds somewhere to route it (see drop.lua); nil for a DLQ
-- replay (reason ''), which is no death.
local function to_outbox(outbox, stats, reason, time_ms, source_id, fields, route)
  local entry = {F.deathReason, reason, F.deathTime, time_ms, F.sourceId, source_id, F.route, route or ''}
  for _, value in ipairs(fields) do entry[#entry + 1] = value end
  if stats then redis.call('HINCRBY', stats, 'deadLettered:' .. reason, 1) end
  return redis.call('XADD', outbox, '*', unpack(entry))
end
