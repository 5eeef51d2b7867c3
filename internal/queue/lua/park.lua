-- Set a stream entry aside behind its conversation's deferred entries, and
-- acknowledge and delete it from the stream, atomically.
-- KEYS[1] the partition lease
-- KEYS[2] the partition stream
-- KEYS[3] the conversation's parked list (same hash tag as every key here)
-- KEYS[4] the partition's due set: conversation -> due time, unix milliseconds
-- KEYS[5] the partition's count of parked entries
-- ARGV[1] the caller's replica id
-- ARGV[2] the stream entry id
-- ARGV[3] the parked entry (JSON)
-- ARGV[4] the conversation's member in the due set
-- ARGV[5] the due time, unix milliseconds; "" to queue behind the entries
--         already parked, keeping their due time
-- ARGV[6] now, unix milliseconds
-- ARGV[7] the consumer group
-- Returns the conversation's due time, -1 when the lease is not the
-- caller's, or 0 when the entry is no longer pending (another replica
-- finished it); in both cases nothing changes.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('XACK', KEYS[2], ARGV[7], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('INCR', KEYS[5])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  return tonumber(ARGV[5])
end
local due = redis.call('ZSCORE', KEYS[4], ARGV[4])
if not due then
  due = ARGV[6]
  redis.call('ZADD', KEYS[4], due, ARGV[4])
end
return tonumber(due)
