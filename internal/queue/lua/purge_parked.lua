-- Remove a conversation's parked entries, when its bot is deleted.
-- KEYS[1] the conversation's parked list
-- KEYS[2] the partition's due set (same hash tag as every key here)
-- KEYS[3] the partition's count of parked entries
-- ARGV[1] the conversation's member in the due set
-- Returns how many entries were removed. The partition's owner finds the
-- list empty when the conversation is next due, and forgets it.
local n = redis.call('LLEN', KEYS[1])
if n > 0 then
  redis.call('DEL', KEYS[1])
  if redis.call('DECRBY', KEYS[3], n) <= 0 then
    redis.call('DEL', KEYS[3])
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
return n
