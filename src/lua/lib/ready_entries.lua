-- ready_entries: up to `count` of the oldest ready entries of `stream` (after the last id
-- that `group` delivered: entries no consumer has seen), or none when there is no group.
local function ready_entries(stream, group, count)
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, last
    for i = 1, #info, 2 do
      if info[i] == 'name' then name = info[i + 1] end
      if info[i] == 'last-delivered-id' then last = info[i + 1] end
    end
    if name == group then return redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', count) end
  end
  return {}
end
