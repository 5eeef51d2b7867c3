-- Extend a partition lease if the caller still holds it.
-- KEYS[1] the lease key
-- ARGV[1] the holder's id
-- ARGV[2] the lease time in milliseconds
-- Returns 1 when renewed, 0 when the lease is lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
