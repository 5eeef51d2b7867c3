-- Push a batch of one bot's invocations onto its recent list, giving each
-- an id, and tell the bot's followers the last id.
-- KEYS[1] the bot's recent list (newest first)
-- ARGV[1] how many entries the list keeps
-- ARGV[2] the list's TTL in milliseconds
-- ARGV[3] the Pub/Sub channel to publish the last id on, or "" for none
-- ARGV[4..] the entries, oldest first, each a JSON object without an id
-- An id is "<ms>-<seq>": the Redis clock in milliseconds and a sequence
-- number within it, always above the id at the head of the list, so ids
-- grow in the order entries are pushed, whichever replica pushes them.
-- Returns the last id given.
local ms, seq = 0, -1
local head = redis.call('LINDEX', KEYS[1], 0)
if head then
  local m, s = string.match(head, '^{"id":"(%d+)%-(%d+)"')
  if m then
    ms, seq = tonumber(m), tonumber(s)
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > ms then
  ms, seq = now, -1
end
local stamped = {}
for i = 4, #ARGV do
  seq = seq + 1
  stamped[#stamped + 1] = '{"id":"' .. ms .. '-' .. seq .. '",' .. string.sub(ARGV[i], 2)
end
for i = 1, #stamped, 500 do
  redis.call('LPUSH', KEYS[1], unpack(stamped, i, math.min(i + 499, #stamped)))
end
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local last = ms .. '-' .. seq
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], last)
end
return last
