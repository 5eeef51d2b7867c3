-- Move a schedule's "last fire time" forward, never back.
-- KEYS[1] last-fire key
-- ARGV[1] fire time (unix seconds)
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > last then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
