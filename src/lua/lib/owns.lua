-- owns: does `consumer` own the partition whose owner hash is `owner`, under fencing token
-- `token`, with a lease that has not ended at `now_ms`? Ordered consumers' scripts check this
-- first: a deposed owner reads, claims and redelivers nothing.
local function owns(owner, consumer, token, now_ms)
  local held = redis.call('HMGET', owner, 'consumer', 'token', 'until')
  return held[1] == consumer and held[2] == token and tonumber(held[3]) >= now_ms
end
