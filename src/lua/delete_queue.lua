-- delete_queue: remove a queue record and every binding to it (the stream is deleted
-- by the caller afterwards, in its own slot).
-- KEYS: queues bindings version
-- ARGV: name
-- Returns {'ok', version}, or {'ok', 0} when the queue did not exist.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'ok', 0} end
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local b = cjson.decode(field)
  if b[2] == 'queue' and b[3] == ARGV[1] then redis.call('HDEL', KEYS[2], field) end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return {'ok', redis.call('INCR', KEYS[3])}
