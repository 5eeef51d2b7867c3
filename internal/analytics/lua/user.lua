-- Record users' turns in their index, unless a user was erased after them:
-- the conversations they took part in, the fallback utterances they sent
-- (so an erasure can take them back out of the top lists), and when the
-- user was first seen. One call handles the users of one shard of a bot,
-- whose keys share a hash tag.
-- KEYS: per user, four keys: info hash, conversations set, fallback
-- references list, erasure marker (Unix ms of the last erasure)
-- ARGV[1] retention ms, ARGV[2] max fallback references kept, then per
-- user: the number of turns n, then n times three values: turn time (Unix
-- ms), conversation, fallback reference ('' for none)
-- Returns per user three values: 1 if the user had no recorded turn before
-- else 0, the erasure time ms or 0, and when the user was first seen (the
-- index's first-seen time, Unix ms) or 0
local retention, maxRefs = ARGV[1], tonumber(ARGV[2])
local out = {}
local a = 3
for k = 1, #KEYS, 4 do
  local info, convs, fb, marker = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local n = tonumber(ARGV[a])
  a = a + 1
  local erased = tonumber(redis.call('GET', marker) or '0')
  local first = nil
  local refs, anyConv = false, false
  local added = {}
  for i = a, a + 3 * n - 1, 3 do
    local at = tonumber(ARGV[i])
    if at > erased then
      if not first or at < first then first = at end
      local conv = ARGV[i + 1]
      if conv ~= '' and not added[conv] then
        added[conv] = true
        if redis.call('SADD', convs, conv) == 1 then
          anyConv = true
        end
      end
      if ARGV[i + 2] ~= '' then
        redis.call('LPUSH', fb, ARGV[i + 2])
        refs = true
      end
    end
  end
  a = a + 3 * n
  local new = 0
  if first then
    -- A user is remembered for the retention from the first turn; the
    -- conversations set from the user's latest new conversation.
    new = redis.call('HSETNX', info, 'first', first)
    if new == 1 then
      redis.call('PEXPIRE', info, retention)
    end
    if anyConv then
      redis.call('PEXPIRE', convs, retention)
    end
    if refs then
      redis.call('LTRIM', fb, 0, maxRefs - 1)
      redis.call('PEXPIRE', fb, retention)
    end
  end
  out[#out + 1] = new
  out[#out + 1] = erased
  out[#out + 1] = tonumber(redis.call('HGET', info, 'first') or '0')
end
return out
