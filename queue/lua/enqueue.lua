-- Enqueue one event unless its delivery was seen before.
-- KEYS[1] the delivery's dedup marker
-- KEYS[2] the partition stream (same hash tag as KEYS[1])
-- ARGV[1] dedup TTL in milliseconds; "0" skips the dedup check (a replay)
-- ARGV[2] the event as JSON
-- ARGV[3] the enqueue time, unix microseconds
-- Returns the new entry id, or false for a duplicate delivery.
if ARGV[1] ~= '0' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
    return false
  end
end
return redis.call('XADD', KEYS[2], '*', 'event', ARGV[2], 'at', ARGV[3])
