-- Append turns to conversations' transcripts and update their
-- descriptions. One call handles the conversations of one shard of a bot,
-- whose keys share a hash tag.
-- KEYS: per conversation, two keys: transcript list, description hash
-- ARGV[1] retention ms, ARGV[2] turns kept per transcript, then per
-- conversation: the number of entries n, started (Unix ms), user, channel,
-- last (Unix ms), ended (Unix ms or ''), sessions started, then the n
-- entries (JSON)
-- Returns the number of conversations written.
local retention, keep = ARGV[1], tonumber(ARGV[2])
local a = 3
for k = 1, #KEYS, 2 do
  local tr, cv = KEYS[k], KEYS[k + 1]
  local n = tonumber(ARGV[a])
  local started, user, channel, last, ended, sessions = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], tonumber(ARGV[a + 6])
  a = a + 7
  local length = redis.call('RPUSH', tr, unpack(ARGV, a, a + n - 1))
  a = a + n
  if length > keep then
    redis.call('LTRIM', tr, -keep, -1)
  end
  redis.call('PEXPIRE', tr, retention)
  if ended ~= '' then
    redis.call('HSET', cv, 'user', user, 'channel', channel, 'last', last, 'ended', ended)
  else
    redis.call('HSET', cv, 'user', user, 'channel', channel, 'last', last)
  end
  if length == n then
    -- A new transcript: the conversation starts (again) being recorded here.
    redis.call('HSET', cv, 'started', started)
  end
  redis.call('HINCRBY', cv, 'turns', n)
  if sessions > 0 then
    redis.call('HINCRBY', cv, 'sessions', sessions)
  end
  redis.call('PEXPIRE', cv, retention)
end
return #KEYS / 2
