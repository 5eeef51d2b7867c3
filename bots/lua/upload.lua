-- Store a new handler version as the intent's stable version, or as its canary.
-- KEYS[1] intent hash (latest, src:<n>, meta:<n>), KEYS[2] bot's stable-versions hash,
-- KEYS[3] generation counter, KEYS[4] bot's rollouts hash (intent -> {canary, percent, previous})
-- ARGV[1] intent name, ARGV[2] source, ARGV[3] sha256, ARGV[4] creation time (RFC 3339),
-- ARGV[5] canary percent (0-100), or -1 for a plain upload
-- Returns {version, status}:
--   0 stored as a new version;
--   1 unchanged: the source is the stable version's;
--   2 the source is the canary's: only its percent changed;
--   3 refused: a plain upload while a canary runs (version is the canary's, percent follows);
--   4 refused: a canary for an intent with no stable version;
--   5 unchanged: the source is the canary's, with the same percent or in a plain upload.
local function sha(v)
  local meta = redis.call('HGET', KEYS[1], 'meta:' .. v)
  if meta then
    return cjson.decode(meta).sha256
  end
end

local percent = tonumber(ARGV[5])
local stable = redis.call('HGET', KEYS[2], ARGV[1])
local raw = redis.call('HGET', KEYS[4], ARGV[1])
local ro = {}
if raw then
  ro = cjson.decode(raw)
end

if stable and sha(stable) == ARGV[3] then
  return {tonumber(stable), 1}
end
if ro.canary then
  if sha(ro.canary) == ARGV[3] then
    if percent < 0 or ro.percent == percent then
      return {ro.canary, 5}
    end
    ro.percent = percent
    redis.call('HSET', KEYS[4], ARGV[1], cjson.encode(ro))
    redis.call('INCR', KEYS[3])
    return {ro.canary, 2}
  end
  if percent < 0 then
    return {ro.canary, 3, ro.percent}
  end
end
if percent >= 0 and not stable then
  return {0, 4}
end

local n = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], 'src:' .. n, ARGV[2],
  'meta:' .. n, cjson.encode({version = n, sha256 = ARGV[3], created = ARGV[4]}))
if percent < 0 then
  -- A plain upload serves every conversation at once: no previous version is kept.
  redis.call('HSET', KEYS[2], ARGV[1], n)
  redis.call('HDEL', KEYS[4], ARGV[1])
else
  -- A canary replaces any earlier canary; the previous stable version stays.
  ro.canary = n
  ro.percent = percent
  redis.call('HSET', KEYS[4], ARGV[1], cjson.encode(ro))
end
redis.call('INCR', KEYS[3])
return {n, 0}
