-- move: copy an entry to target streams and delete it from its source stream, if the
-- topology is still at the version the targets were routed with and the entry is still
-- there (so concurrent movers, or a run that is interrupted and repeated, never double it).
-- Used to route dead letters from a queue's outbox and to replay a dead-letter queue.
-- KEYS[1] topology version   KEYS[2] source stream   KEYS[3..] target streams
-- ARGV[1] expected version   ARGV[2] source entry id   ARGV[3] source's consumer group ('' = none)
-- ARGV[4..] fields of the copy
-- Returns {'stale', version}, {'gone'}, {'busy'} (held unacked by a consumer of the source), or
-- {'ok', stream id per target}.
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[1] then return {'stale', version} end
if #redis.call('XRANGE', KEYS[2], ARGV[2], ARGV[2]) == 0 then return {'gone'} end
-- An entry a consumer of the source holds unacked is not moved (it is being handled).
if ARGV[3] ~= '' then
  local pending = redis.pcall('XPENDING', KEYS[2], ARGV[3], ARGV[2], ARGV[2], 1)
  if type(pending) == 'table' and #pending > 0 then return {'busy'} end
end
local fields = {unpack(ARGV, 4)}
local out = {'ok'}
for i = 3, #KEYS do
  out[#out + 1] = redis.call('XADD', KEYS[i], '*', unpack(fields))
end
redis.call('XDEL', KEYS[2], ARGV[2])
return out
