-- owned_ids: which of `ids` (entries of `stream`) are pending for `consumer` in `group`, as a
-- set: one XPENDING over their range for the consumer (`limit`: the most entries it may hold
-- there, which bounds the scan), and one check per id the answer may have cut short. Cheaper
-- than an XPENDING per id when a call settles many deliveries.
local function owned_ids(stream, group, consumer, ids, limit)
  local function parts(id)
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    return tonumber(ms), tonumber(seq)
  end
  local function before(a, b)
    local am, as = parts(a)
    local bm, bs = parts(b)
    return am < bm or (am == bm and as < bs)
  end
  local set = {}
  if #ids == 0 then return set end
  local lowest, highest = ids[1], ids[1]
  for i = 2, #ids do
    if before(ids[i], lowest) then lowest = ids[i] end
    if before(highest, ids[i]) then highest = ids[i] end
  end
  local pending = redis.call('XPENDING', stream, group, lowest, highest, limit, consumer)
  for _, entry in ipairs(pending) do set[entry[1]] = true end
  if #pending >= limit then
    for _, id in ipairs(ids) do
      if not set[id] and #redis.call('XPENDING', stream, group, id, id, 1, consumer) == 1 then
        set[id] = true
      end
    end
  end
  return set
end
