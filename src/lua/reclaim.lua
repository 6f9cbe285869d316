-- reclaim: take over entries that other consumers left unacked for longer than the
-- ack timeout (crashed or stuck), with their delivery counts; or, for the new owner of a
-- partition under ordered consumption (`token` given, `minIdleMs` 0), everything pending.
-- KEYS: stream outbox owner stats
-- ARGV: group consumer minIdleMs startId count timeMs token
-- stats: the partition's counters (see lib/to_outbox.lua).
-- token '': no ownership to check; else the consumer must own the partition under it.
-- Pending entries whose data was trimmed away are dropped from the PEL by XAUTOCLAIM;
-- they go to the outbox as 'poison' so that they are counted or dead-lettered.
-- Returns {next start id, {{id, fields, times delivered}, ...}}, or {'lost'} for an owner
-- that is deposed.
if ARGV[7] ~= '' and not owns(KEYS[3], ARGV[2], ARGV[7], server_ms()) then return {'lost'} end
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, entry in ipairs(claimed[2]) do
  if entry then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    out[#out + 1] = {entry[1], entry[2], pending[1][4]}
  end
end
for _, id in ipairs(claimed[3] or {}) do
  to_outbox(KEYS[2], KEYS[4], 'poison', ARGV[6], id, {})
end
return {claimed[1], out}
