-- Erase a user's index and mark the erasure, so that turns recorded up to
-- now that are still on their way from a replica's buffer are not indexed
-- again.
-- KEYS[1] user info hash, KEYS[2] conversations set, KEYS[3] fallback
-- references list, KEYS[4] erasure marker
-- ARGV[1] erasure time (Unix ms), ARGV[2] marker lifetime ms
-- Returns {conversations, fallback references}
local convs = redis.call('SMEMBERS', KEYS[2])
local refs = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local prev = tonumber(redis.call('GET', KEYS[4]) or '0')
if tonumber(ARGV[1]) > prev then
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])
end
return {convs, refs}
