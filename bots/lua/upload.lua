-- Store a new handler version and make it current.
-- KEYS[1] intent hash (latest, src:<n>, meta:<n>), KEYS[2] bot's current-versions hash, KEYS[3] generation counter
-- ARGV[1] intent name, ARGV[2] source, ARGV[3] sha256, ARGV[4] creation time (RFC 3339)
-- Returns {version, unchanged (0|1)}: uploading the current source again creates no version.
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current then
  local meta = redis.call('HGET', KEYS[1], 'meta:' .. current)
  if meta and cjson.decode(meta).sha256 == ARGV[3] then
    return {tonumber(current), 1}
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], 'src:' .. n, ARGV[2],
  'meta:' .. n, cjson.encode({version = n, sha256 = ARGV[3], created = ARGV[4]}))
redis.call('HSET', KEYS[2], ARGV[1], n)
redis.call('INCR', KEYS[3])
return {n, 0}
