-- release: give back deliveries this consumer owns in place, as a closing consumer does: each
-- keeps its stream id, so it comes before newer messages, and goes to the holder of given-back
-- deliveries, idle at once, so that the next reclaim of any consumer of the queue takes it over
-- (see reclaim.lua); until then it counts as ready.
-- KEYS: stream outbox stats
-- ARGV: group consumer holder idleMs counted timeMs ids...
-- idleMs: the idle time they get, past any ack timeout. counted: '0' for deliveries never
-- handed to a handler, whose delivery count the takeover must not raise; '1' otherwise.
-- stats: the partition's counters (see lib/to_outbox.lua). A give-back is no failure: it is not
-- counted as `redelivered`.
-- A pending entry whose data was deleted goes to the outbox as 'poison' (as reclaim.lua does),
-- not silently out of the PEL.
-- Returns how many were owned and given back.
local released = 0
for i = 7, #ARGV do
  local id = ARGV[i]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2])[1]
  if pending and not redis.call('XRANGE', KEYS[1], id, id)[1] then
    to_outbox(KEYS[2], KEYS[3], 'poison', ARGV[6], id, {})
    redis.call('XACK', KEYS[1], ARGV[1], id)
  elseif pending then
    local times = pending[4]
    if ARGV[5] == '0' then times = times - 1 end
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, id,
      'IDLE', ARGV[4], 'RETRYCOUNT', times, 'JUSTID')
    released = released + 1
  end
end
return released
