-- Hands a conversation to a person, unless a person owns it already.
-- KEYS[1] the conversation's hash
-- KEYS[2] the bot's open handoffs (zset: conversation key -> since, ms)
-- KEYS[3] the open handoffs of the queue (zset, same)
-- KEYS[4] the bot's idle deadlines (zset: conversation key -> deadline, ms)
-- ARGV[1] conversation key, ARGV[2] channel, ARGV[3] platform conversation id,
-- ARGV[4] user, ARGV[5] queue, ARGV[6] reason, ARGV[7] since (ms),
-- ARGV[8] idle deadline (ms), ARGV[9] the intent that handed over ("" for the API)
-- Returns 1 when the conversation was handed over, 0 when a person owned it already.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'key', ARGV[1], 'channel', ARGV[2], 'conversation', ARGV[3], 'user', ARGV[4],
  'queue', ARGV[5], 'reason', ARGV[6], 'since', ARGV[7], 'status', 'waiting', 'intent', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
return 1
