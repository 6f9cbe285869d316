-- read_ordered: an ordered consumer's read of its partition: new entries, only while it owns
-- the partition under its token (a deposed owner reads nothing more).
-- KEYS: stream owner
-- ARGV: group consumer token count
-- Returns {'lost'}, {'ok', entries} with entries as XREADGROUP gives them, or, when there is
-- nothing new, {'empty', id} with the id of the stream's last entry ('0-0' if it has none): a
-- blocking XREAD after that id wakes when the next entry comes.
if not owns(KEYS[2], ARGV[2], ARGV[3], server_ms()) then return {'lost'} end
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
if read and read[1] and #read[1][2] > 0 then return {'ok', read[1][2]} end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {'empty', last[1] and last[1][1] or '0-0'}
