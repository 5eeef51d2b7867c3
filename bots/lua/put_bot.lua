-- Create or update a bot's settings, unless its name is still being freed by
-- a deletion.
-- KEYS[1] the bot's settings, KEYS[2] its generation counter,
-- KEYS[3] its deletion marker (every key shares the bot's hash tag)
-- ARGV[1] the settings as JSON
-- Returns 1 when stored, -1 when the bot is being deleted.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
