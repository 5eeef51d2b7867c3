-- Make an existing handler version the only one served again: any canary and
-- previous version of the intent are dropped.
-- KEYS[1] intent hash, KEYS[2] bot's stable-versions hash, KEYS[3] generation counter,
-- KEYS[4] bot's rollouts hash
-- ARGV[1] intent name, ARGV[2] version
-- Returns 1, or 0 when the version does not exist.
if redis.call('HEXISTS', KEYS[1], 'src:' .. ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
