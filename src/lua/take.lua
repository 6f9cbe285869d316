-- take: move an entry of a queue into the queue's outbox, to be routed by the relay to `route`
-- (DLQ replay), unless a consumer of the queue holds it unacked (it is being handled).
-- KEYS: stream outbox
-- ARGV: group entryId route timeMs
-- route: JSON {exchange, routingKey}. One slot: the copy into the target queues is the relay's
-- next step, idempotent under the outbox entry's id.
-- Returns 'ok', 'gone' (no such entry) or 'busy' (held unacked; nothing changed).
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
if not entry then return 'gone' end
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if type(pending) == 'table' and #pending > 0 then return 'busy' end
to_outbox(KEYS[2], nil, '', ARGV[4], ARGV[2], entry[2], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[2])
return 'ok'
