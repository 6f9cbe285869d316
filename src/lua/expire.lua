-- expire: dead-letter the expired messages at the head of a queue, those no consumer has read
-- yet, as RabbitMQ expires messages at a queue's head without a consumer.
-- KEYS: stream outbox stats
-- ARGV: group nowMs ttlMs limit
-- stats: the partition's counters (see lib/to_outbox.lua).
-- ttlMs: the queue's messageTtlMs, -1 for none (counted from the first enqueue, see
-- requeue.lua); a message's own expiration counts from its publish. limit: the most entries
-- one call looks at.
-- The sweep stops at the first ready entry that has not expired: one behind it waits for the
-- head to move, as in RabbitMQ. An entry read but unacked is a consumer's and never expires
-- here. An entry that is not a sluice message stops the sweep too (a consumer makes it poison).
-- Returns {expired, when the head expires next (ms; nowMs when the limit was reached), or -1
-- when nothing ready can expire}.
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, expired = tonumber(ARGV[4]), 0
-- A deleted queue has nothing to expire (and no stream to make again).
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, -1} end
for _, entry in ipairs(ready_entries(KEYS[1], ARGV[1], limit)) do
  local id, fields = entry[1], entry[2]
  local enqueued_at, meta = tonumber(string.match(id, '^(%d+)')), nil
  for i = 1, #fields, 2 do
    if fields[i] == F.enqueuedAt then enqueued_at = tonumber(fields[i + 1]) end
    if fields[i] == F.meta then meta = fields[i + 1] end
  end
  local ok, packed = pcall(cjson.decode, meta or '')
  if not ok or type(packed) ~= 'table' then return {expired, -1} end
  -- Envelope positions (src/message/envelope.ts): 5 publish time, 8 expiration.
  local due = -1
  if ttl >= 0 then due = enqueued_at + ttl end
  local expiration, published_at = packed[8], packed[5]
  if type(expiration) == 'number' and type(published_at) == 'number' then
    local at = published_at + expiration
    if due < 0 or at < due then due = at end
  end
  if due < 0 or due > now then return {expired, due} end
  to_outbox(KEYS[2], KEYS[3], 'expired', now, id, fields)
  redis.call('XDEL', KEYS[1], id)
  expired = expired + 1
end
-- All `limit` expired: more may have; the caller sweeps again at once.
if expired == limit then return {expired, now} end
return {expired, -1}
