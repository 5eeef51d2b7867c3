-- Begin a turn: return a cached answer for a message already processed,
-- else take the conversation lock and load the session state.
-- KEYS[1] lock key, KEYS[2] state key, KEYS[3] message marker key (optional)
-- ARGV[1] lock token, ARGV[2] lock lease in milliseconds
-- Returns {2, cached answer} | {0, lock pttl} | {1, state or false}
if KEYS[3] then
  local done = redis.call('GET', KEYS[3])
  if done then
    return {2, done}
  end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
local state = redis.call('GET', KEYS[2])
return {1, state}
