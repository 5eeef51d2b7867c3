-- Put a conversation's first parked entry back to wait, after another
-- refusal or a failed try.
-- KEYS[1] the partition lease
-- KEYS[2] the conversation's parked list (same hash tag as KEYS[1])
-- KEYS[3] the partition's due set
-- ARGV[1] the caller's replica id
-- ARGV[2] the first entry as the caller read it
-- ARGV[3] the entry updated (delays and tries so far)
-- ARGV[4] the conversation's member in the due set
-- ARGV[5] the new due time, unix milliseconds
-- Returns 1, -1 when the lease is not the caller's, or 0 when the first
-- entry is not the one read (an erasure removed it).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then
  return 0
end
redis.call('LSET', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
return 1
