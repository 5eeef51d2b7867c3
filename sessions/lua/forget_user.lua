-- Delete a user's index of conversations and mark the user erased.
-- KEYS[1] the user's conversations, KEYS[2] the user's erasure marker
-- ARGV[1] erasure time, ms since the epoch, ARGV[2] marker lifetime ms
-- Returns the conversation keys the index held.
local convs = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > prev then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
end
return convs
