-- Start deleting a bot: its settings go (so the bot no longer exists for
-- turns, webhooks or the API) and its deletion marker is set, in one step.
-- KEYS[1] the bot's settings, KEYS[2] its generation counter,
-- KEYS[3] its deletion marker (a hash; every key shares the bot's hash tag)
-- ARGV[1] when the deletion starts (RFC 3339)
-- Returns 1 when the deletion starts, 2 when it was under way already, 0
-- when there is no such bot.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 2
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], 'started', ARGV[1])
return 1
