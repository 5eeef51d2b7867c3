-- Take or renew the lease on a bot's deletion, so one replica at a time
-- removes its data.
-- KEYS[1] the deletion marker, KEYS[2] the lease (same hash tag)
-- ARGV[1] the claiming replica's id, ARGV[2] the lease in milliseconds
-- Returns 1 when the caller holds the lease, 0 when another replica does,
-- -1 when the bot is not being deleted.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
