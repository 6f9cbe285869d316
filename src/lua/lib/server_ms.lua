-- server_ms: the server's clock in milliseconds (leases are kept in server time, so that the
-- clocks of the consumers' hosts do not matter).
local function server_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
