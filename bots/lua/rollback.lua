-- Make an existing handler version current again.
-- KEYS[1] intent hash, KEYS[2] bot's current-versions hash, KEYS[3] generation counter
-- ARGV[1] intent name, ARGV[2] version
-- Returns 1, or 0 when the version does not exist.
if redis.call('HEXISTS', KEYS[1], 'src:' .. ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
