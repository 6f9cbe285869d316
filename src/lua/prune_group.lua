-- prune_group: forget the consumers of a partition's group that hold nothing and have not read
-- it for `minIdleMs` (gone, or reading elsewhere now): partition 0's group is kept tidy by the
-- registrations (register.lua), the others by this, called when a consumer starts reading one.
-- A consumer that holds nothing loses nothing by it: a later read of it joins the group again.
-- KEYS: stream
-- ARGV: group consumer minIdleMs
-- Returns how many it forgot.
local forgot = 0
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #info, 2 do
    if info[i] == 'name' then name = info[i + 1] end
    if info[i] == 'pending' then pending = info[i + 1] end
    if info[i] == 'idle' then idle = info[i + 1] end
  end
  if pending == 0 and name ~= ARGV[2] and idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    forgot = forgot + 1
  end
end
return forgot
