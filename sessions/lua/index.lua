-- Add a conversation to a user's index, unless the user was erased after
-- the message was received.
-- KEYS[1] the user's conversations (a set of conversation keys),
-- KEYS[2] the user's erasure marker (same hash tag)
-- ARGV[1] when the message was received, ms since the epoch,
-- ARGV[2] the conversation key, ARGV[3] the index lifetime ms
-- Returns 1, or 0 when the user was erased after the message was received.
local erased = redis.call('GET', KEYS[2])
if erased and tonumber(ARGV[1]) <= tonumber(erased) then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
