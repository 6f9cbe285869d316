-- fence: raise a queue partition's fence, its copy of the topology version, to `version`
-- (never lower it). Topology changes raise the fences after writing the topology and before
-- resolving; the publish script refuses a queue whose fence is above the version it routed with.
-- KEYS: fence
-- ARGV: version create
-- create '1' makes a missing fence (only declaring the queue does); '0' leaves it missing, so
-- that a change racing a queue's deletion cannot bring back a fence for a queue that is gone.
-- Returns the fence's value after the call, or false when it is missing.
local fence = tonumber(redis.call('GET', KEYS[1]))
local version = tonumber(ARGV[1])
if fence == nil and ARGV[2] ~= '1' then return false end
if fence == nil or fence < version then
  redis.call('SET', KEYS[1], version)
  return version
end
return fence
