-- unbind: remove a binding; removing one that does not exist is not an error (as RabbitMQ).
-- KEYS: bindings version
-- ARGV: binding
-- binding: the binding field (JSON array).
-- Returns {'ok', version} or {'ok', 0} when there was no such binding.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {'ok', 0} end
return {'ok', redis.call('INCR', KEYS[2])}
