-- bind: add a binding if both ends exist.
-- KEYS: exchanges destinations bindings version
-- ARGV: source destination binding
-- destinations: the hash of queues or of exchanges; binding: the binding field (JSON array).
-- Returns {'ok', version}, {'ok', 0} when the binding already existed,
-- {'no_source'} or {'no_destination'} (nothing changes).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'no_source'} end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return {'no_destination'} end
if redis.call('HSETNX', KEYS[3], ARGV[3], '1') == 0 then return {'ok', 0} end
return {'ok', redis.call('INCR', KEYS[4])}
