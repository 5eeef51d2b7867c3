-- Remove a key of a bot's key/value store and its index entry.
-- KEYS[1] value key
-- KEYS[2] index key
-- ARGV[1] key name (index member)
redis.call('DEL', KEYS[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
