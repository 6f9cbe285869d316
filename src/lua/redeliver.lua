-- redeliver: an ordered consumer delivers an entry it holds again, in place (a failed message
-- keeps its key's place instead of going to the tail): its delivery count goes up.
-- KEYS: stream owner stats
-- ARGV: group consumer token id retry
-- stats: the partition's counters; `redelivered` counts the retry (retry '1'), as requeue.lua
-- does: not that of a delivery at the queue's delivery limit (retry '0'), which is delivered
-- again only to be dead-lettered.
-- Returns {'ok', fields, times delivered}, {'lost'} when the partition is no longer the
-- consumer's, {'stale'} when the entry is not pending for it, {'gone'} when its data is gone.
if not owns(KEYS[2], ARGV[2], ARGV[3], server_ms()) then return {'lost'} end
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[4]) then return {'stale'} end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[4])
if not claimed[1] then return {'gone'} end
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[3], 'redelivered', 1) end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[4], 1)
return {'ok', claimed[1][2], pending[1][4]}
