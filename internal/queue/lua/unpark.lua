-- Remove a conversation's first parked entry once it is done (answered,
-- answered before, or dead-lettered), marking its reply sent. The next entry,
-- if any, is due at once.
-- KEYS[1] the conversation's parked list
-- KEYS[2] the partition's due set (same hash tag as every key here)
-- KEYS[3] the partition's count of parked entries
-- KEYS[4] the event's sent marker
-- KEYS[5] the partition lease
-- ARGV[1] the first entry as the caller read it
-- ARGV[2] the conversation's member in the due set
-- ARGV[3] now, unix milliseconds
-- ARGV[4] the sent marker's TTL in milliseconds; "0" sets no marker
-- ARGV[5] the caller's replica id
-- Returns how many entries the conversation has left parked, -1 when the
-- lease is not the caller's (another replica moved on), or -2 when the
-- first entry is not the one read (an erasure removed it).
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[4])
end
if redis.call('GET', KEYS[5]) ~= ARGV[5] then
  return -1
end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then
  return -2
end
redis.call('LPOP', KEYS[1])
if redis.call('DECR', KEYS[3]) <= 0 then
  redis.call('DEL', KEYS[3])
end
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
end
return left
