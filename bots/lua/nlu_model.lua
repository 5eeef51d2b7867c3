-- Store a trained NLU model, unless the bot's NLU data changed while it trained.
-- KEYS[1] NLU data (JSON), KEYS[2] NLU data checksum, KEYS[3] model, KEYS[4] generation counter,
-- KEYS[5] training lease
-- ARGV[1] sha1 (hex) of the NLU data the model was trained on, ARGV[2] the serialized model
-- Returns 1 when stored (the generation is bumped), 0 when the data has changed since.
local data = redis.call('GET', KEYS[1])
if not data or redis.sha1hex(data) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[1] .. ARGV[2])
redis.call('INCR', KEYS[4])
if redis.call('GET', KEYS[5]) == ARGV[1] then
  redis.call('DEL', KEYS[5])
end
return 1
