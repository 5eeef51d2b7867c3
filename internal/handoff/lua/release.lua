-- Gives a conversation back to the bot: exactly one caller gets its state.
-- KEYS[1] the conversation's hash
-- KEYS[2] the bot's open handoffs (zset)
-- KEYS[3] the open handoffs of the conversation's queue (zset)
-- KEYS[4] the bot's idle deadlines (zset)
-- ARGV[1] conversation key, ARGV[2] the queue the caller read,
-- ARGV[3] 0 to release now, or a time (ms): release only when the idle
-- deadline is at or before it
-- Returns the hash's fields and values when released; {} when no person
-- owned the conversation or it is not idle; {"queue", q} when its queue is
-- not ARGV[2] (the caller reads it again).
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {}
end
local q = redis.call('HGET', KEYS[1], 'queue')
if q ~= ARGV[2] then
  return {'queue', q}
end
if ARGV[3] ~= '0' then
  local deadline = redis.call('ZSCORE', KEYS[4], ARGV[1])
  if deadline and tonumber(deadline) > tonumber(ARGV[3]) then
    return {}
  end
end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return fields
