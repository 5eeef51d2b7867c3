-- Commit a turn: save (or clear) the state, append to history, remember the
-- answer for the message id (indexed, so erasing the conversation finds it),
-- release the lock. Refuses if the lock is no longer ours: ERASED when the
-- conversation was erased after the message was received, else LEASELOST
-- (the lease expired and another turn took it).
-- KEYS[1] lock key, KEYS[2] state key, KEYS[3] history key,
-- KEYS[4] index of remembered answers (a sorted set of marker keys by expiry),
-- KEYS[5] erasure marker, KEYS[6] message marker key (optional)
-- ARGV[1] lock token, ARGV[2] state JSON ('' clears the state), ARGV[3] state TTL ms,
-- ARGV[4] history entry JSON ('' for none), ARGV[5] history length,
-- ARGV[6] answer to remember for the message ('' for none), ARGV[7] marker TTL ms,
-- ARGV[8] now, ms since the epoch, ARGV[9] when the message was received, ms
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  local erased = redis.call('GET', KEYS[5])
  if erased and tonumber(ARGV[9]) <= tonumber(erased) then
    return redis.error_reply('ERASED conversation erased during the turn')
  end
  return redis.error_reply('LEASELOST conversation lock expired before commit')
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[4])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
if KEYS[6] and ARGV[6] ~= '' then
  local now = tonumber(ARGV[8])
  redis.call('SET', KEYS[6], ARGV[6], 'PX', ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[7]), KEYS[6])
  if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[7]) then
    redis.call('PEXPIRE', KEYS[4], ARGV[7])
  end
end
redis.call('DEL', KEYS[1])
return 1
