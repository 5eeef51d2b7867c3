-- Store a value of a bot's key/value store, enforcing the key quota.
-- The index is a sorted set of the bot's keys scored by their expiry in
-- milliseconds (+inf for none); expired members are pruned before counting.
-- KEYS[1] value key
-- KEYS[2] index key
-- ARGV[1] key name (index member)
-- ARGV[2] value
-- ARGV[3] ttl in milliseconds, 0 for none
-- ARGV[4] maximum number of keys
-- Returns 1 when stored, 0 when the quota refused a new key.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
    return 0
  end
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
end
return 1
