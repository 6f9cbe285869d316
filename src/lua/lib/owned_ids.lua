-- owned_ids: which of `ids` (entries of `stream`, `lowest` to `highest` as the client worked
-- them out) are pending for `consumer` in `group`, as a set: one XPENDING over that range for
-- the consumer (`limit`: the most entries it may hold there, which bounds the scan), and one
-- check per id the answer may have cut short. Cheaper than an XPENDING per id when a call
-- settles many deliveries.
local function owned_ids(stream, group, consumer, ids, lowest, highest, limit)
  local set = {}
  if #ids == 0 then return set end
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
