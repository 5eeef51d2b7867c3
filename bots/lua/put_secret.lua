-- Store a bot's secret, sealed by the caller, unless the bot does not exist
-- or has too many secrets.
-- KEYS[1] the bot's settings, KEYS[2] its secrets (a hash: name -> stored
-- secret as JSON), KEYS[3] its generation counter (every key shares the
-- bot's hash tag)
-- ARGV[1] the secret's name, ARGV[2] the stored secret, ARGV[3] the most
-- secrets a bot may have
-- Returns 1 when created, 0 when replaced, -1 when the bot does not exist,
-- -2 when the bot has ARGV[3] secrets already.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local exists = redis.call('HEXISTS', KEYS[2], ARGV[1])
if exists == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then
  return -2
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
return 1 - exists
