-- delete_exchange: remove an exchange and every binding from or to it.
-- KEYS: exchanges bindings version
-- ARGV: name ifUnused
-- ifUnused: '1' when the exchange must be unused (no bindings from it).
-- Binding fields are JSON arrays [source, destinationType, destination, key, args].
-- Returns {'ok', version}, {'ok', 0} when absent, or {'in_use', n} (nothing changes).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'ok', 0} end
local doomed = {}
local outgoing = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local b = cjson.decode(field)
  if b[1] == ARGV[1] then
    outgoing = outgoing + 1
    doomed[#doomed + 1] = field
  elseif b[2] == 'exchange' and b[3] == ARGV[1] then
    doomed[#doomed + 1] = field
  end
end
if ARGV[2] == '1' and outgoing > 0 then return {'in_use', outgoing} end
for _, field in ipairs(doomed) do redis.call('HDEL', KEYS[2], field) end
redis.call('HDEL', KEYS[1], ARGV[1])
return {'ok', redis.call('INCR', KEYS[3])}
