-- Begin a turn: refuse a message received before the conversation was
-- erased, return a cached answer for a message already processed, else
-- take the conversation lock and load the session state.
-- KEYS[1] lock key, KEYS[2] state key, KEYS[3] erasure marker,
-- KEYS[4] message marker key (optional)
-- ARGV[1] lock token, ARGV[2] lock lease in milliseconds,
-- ARGV[3] when the message was received, ms since the epoch
-- Returns {3} | {2, cached answer} | {0, lock pttl} | {1, state or false}
local erased = redis.call('GET', KEYS[3])
if erased and tonumber(ARGV[3]) <= tonumber(erased) then
  return {3}
end
if KEYS[4] then
  local done = redis.call('GET', KEYS[4])
  if done then
    return {2, done}
  end
end
-- The lock is taken, unless this token holds it already (a retried call).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {0, redis.call('PTTL', KEYS[1])}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local state = redis.call('GET', KEYS[2])
return {1, state}
