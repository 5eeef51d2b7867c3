-- Change an intent's running canary: set its percent, promote it or abort it.
-- KEYS[1] bot's stable-versions hash, KEYS[2] generation counter, KEYS[3] bot's rollouts hash
-- ARGV[1] intent name, ARGV[2] action: "percent", "promote" or "abort", ARGV[3] percent (0-100)
-- Returns the canary's version, or 0 when the intent has no canary.
-- promote: the canary becomes stable and the old stable version becomes the
-- previous one, kept for the conversations that began on it.
-- abort: the canary is dropped; the previous version, if any, stays.
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then
  return 0
end
local ro = cjson.decode(raw)
local canary = ro.canary
if not canary then
  return 0
end
if ARGV[2] == 'percent' then
  ro.percent = tonumber(ARGV[3])
elseif ARGV[2] == 'promote' then
  ro.previous = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
  redis.call('HSET', KEYS[1], ARGV[1], canary)
  ro.canary = nil
  ro.percent = nil
elseif ARGV[2] == 'abort' then
  ro.canary = nil
  ro.percent = nil
else
  return redis.error_reply('unknown canary action ' .. ARGV[2])
end
if ro.canary or ro.previous then
  redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(ro))
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('INCR', KEYS[2])
return canary
