-- to_outbox: add a dead letter to a queue's outbox: 'dr' reason, 'dt' time (ms), 'sid' the
-- entry id it had in the queue, then the entry's own fields (none when its data was gone).
-- The dead-letter relay routes it from there to the queue's dead-letter exchange.
local function to_outbox(outbox, reason, time_ms, source_id, fields)
  local entry = {'dr', reason, 'dt', time_ms, 'sid', source_id}
  for _, value in ipairs(fields) do entry[#entry + 1] = value end
  return redis.call('XADD', outbox, '*', unpack(entry))
end
