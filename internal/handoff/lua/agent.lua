-- An agent claims a conversation a person owns, or writes in it.
-- KEYS[1] the conversation's hash
-- KEYS[2] the bot's idle deadlines (zset)
-- ARGV[1] conversation key, ARGV[2] agent, ARGV[3] "claim" or "message",
-- ARGV[4] text (message), ARGV[5] time (ms), ARGV[6] new idle deadline (ms)
-- Returns {1, previous agent} when done; {0, ""} when no person owns the
-- conversation; {-1, agent} when another agent owns it (a message only: a
-- claim takes the conversation over).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, ''}
end
local cur = redis.call('HGET', KEYS[1], 'agent') or ''
if ARGV[3] == 'message' and cur ~= '' and cur ~= ARGV[2] then
  return {-1, cur}
end
redis.call('HSET', KEYS[1], 'status', 'active', 'agent', ARGV[2])
if ARGV[3] == 'message' then
  redis.call('HSET', KEYS[1], 'last_text', ARGV[4], 'last_at', ARGV[5], 'last_from', 'agent')
end
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return {1, cur}
