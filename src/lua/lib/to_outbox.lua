-- to_outbox: add an entry to a queue's outbox: F.deathReason, F.deathTime (ms), F.sourceId (the
-- entry id it had in the queue), F.route ('' for the queue's dead-letter exchange, else where a
-- DLQ replay sends it), then the entry's own fields (none when its data was gone). The relay
-- routes it from there, in the queue's own slot until then.
local function to_outbox(outbox, reason, time_ms, source_id, fields, route)
  local entry = {F.deathReason, reason, F.deathTime, time_ms, F.sourceId, source_id, F.route, route or ''}
  for _, value in ipairs(fields) do entry[#entry + 1] = value end
  return redis.call('XADD', outbox, '*', unpack(entry))
end
