-- Enqueue one event unless its delivery was seen before.
-- KEYS[1] the delivery's dedup marker
-- KEYS[2] the partition stream (same hash tag as KEYS[1])
-- KEYS[3] the partition's count of parked entries (same hash tag)
-- ARGV[1] dedup TTL in milliseconds; "0" skips the dedup check (a replay)
-- ARGV[2] the event as JSON
-- ARGV[3] the enqueue time, unix microseconds
-- ARGV[4] the most entries the partition may hold, parked ones included
-- Returns the new entry id, false for a duplicate delivery, or 0 when the
-- partition is full (the delivery is not marked seen, so a retry may get in).
if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local parked = tonumber(redis.call('GET', KEYS[3]) or '0')
if redis.call('XLEN', KEYS[2]) + parked >= tonumber(ARGV[4]) then
  return 0
end
if ARGV[1] ~= '0' then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return redis.call('XADD', KEYS[2], '*', 'event', ARGV[2], 'at', ARGV[3])
