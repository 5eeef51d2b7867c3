-- Records a user's message in a conversation a person owns.
-- KEYS[1] the conversation's hash
-- KEYS[2] the bot's idle deadlines (zset)
-- ARGV[1] conversation key, ARGV[2] user, ARGV[3] text, ARGV[4] time (ms),
-- ARGV[5] new idle deadline (ms)
-- Returns {held, first}: held is 0 when no person owns the conversation;
-- first is 1 for the first message since the handoff.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end
local first = redis.call('HSETNX', KEYS[1], 'noticed', ARGV[4])
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'last_text', ARGV[3], 'last_at', ARGV[4], 'last_from', 'user')
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
return {1, first}
