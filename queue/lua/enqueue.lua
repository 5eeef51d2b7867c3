-- Enqueue one event unless its delivery was seen before.
-- KEYS[1] the delivery's dedup marker
-- KEYS[2] the partition stream (same hash tag as KEYS[1])
-- ARGV[1] dedup TTL in milliseconds; "0" skips the dedup check (a replay)
-- ARGV[2] the event as JSON
-- ARGV[3] the enqueue time, unix microseconds
-- ARGV[4] the most entries the stream may hold
-- Returns the new entry id, false for a duplicate delivery, or 0 when the
-- stream is full (the delivery is not marked seen, so a retry may get in).
if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[4]) then
  return 0
end
if ARGV[1] ~= '0' then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return redis.call('XADD', KEYS[2], '*', 'event', ARGV[2], 'at', ARGV[3])
