-- owned: is entry `id` of `stream` pending for `consumer` in `group`? Settling scripts check
-- this first, because XACK, XCLAIM and XDEL alone would act on an entry that another
-- consumer has reclaimed in the meantime.
local function owned(stream, group, consumer, id)
  return #redis.call('XPENDING', stream, group, id, id, 1, consumer) == 1
end
