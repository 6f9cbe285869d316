-- publish: append a batch of messages to their target streams, if the topology is
-- still at the version the producer routed with (else nothing is written).
-- KEYS[1] topology version counter   KEYS[2..] target streams (each once)
-- ARGV[1] expected topology version   ARGV[2] number of messages, then per message:
--   number of targets T, T indexes into KEYS, number of field/value items F, F items.
-- Returns {'stale', currentVersion} or {'ok', id, id, ...}: one stream id per target,
-- messages in order, targets in the order given.
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[1] then return {'stale', version} end
local out = {'ok'}
local a = 3
for _ = 1, tonumber(ARGV[2]) do
  local targets = tonumber(ARGV[a])
  local first_target = a + 1
  local nfields = tonumber(ARGV[first_target + targets])
  local first_field = first_target + targets + 1
  local fields = {unpack(ARGV, first_field, first_field + nfields - 1)}
  for t = first_target, first_target + targets - 1 do
    out[#out + 1] = redis.call('XADD', KEYS[tonumber(ARGV[t])], '*', unpack(fields))
  end
  a = first_field + nfields
end
return out
