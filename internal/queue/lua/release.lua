-- Give a partition lease back if the caller still holds it.
-- KEYS[1] the lease key
-- ARGV[1] the holder's id
-- Returns 1 when released, 0 when the lease was not the caller's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
