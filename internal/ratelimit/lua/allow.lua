-- Take one turn from a bot's and a conversation's rate limits (GCRA), or
-- from neither: a turn counts against both only when both allow it.
-- KEYS[1] the bot's key, KEYS[2] the conversation's key (same hash tag)
-- ARGV[1] the bot's emission interval in microseconds ("0": no limit)
-- ARGV[2] the bot's burst tolerance in microseconds
-- ARGV[3] the conversation's emission interval in microseconds ("0": no limit)
-- ARGV[4] the conversation's burst tolerance in microseconds
-- Returns {0, 0} when the turn is allowed, else {1 (the bot's limit) or
-- 2 (the conversation's), microseconds until a turn would be allowed}.
-- Each key holds its theoretical arrival time in microseconds and expires
-- when that time has passed, so an idle conversation leaves nothing behind.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function check(key, interval, tolerance)
  if interval <= 0 then
    return nil, 0
  end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local next = tat + interval
  return next, next - tolerance - now
end

local botNext, botWait = check(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
local convNext, convWait = check(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
if botWait > 0 or convWait > 0 then
  if botWait >= convWait then
    return {1, math.ceil(botWait)}
  end
  return {2, math.ceil(convWait)}
end
if botNext then
  redis.call('SET', KEYS[1], string.format('%d', botNext), 'PX', math.ceil((botNext - now) / 1000))
end
if convNext then
  redis.call('SET', KEYS[2], string.format('%d', convNext), 'PX', math.ceil((convNext - now) / 1000))
end
return {0, 0}
