-- Remove a bot's recent invocations of some conversations, keeping the
-- order and the expiry of the rest.
-- KEYS[1] the bot's recent list
-- ARGV the conversations' keys ("<channel>:<platform id>"); an entry
-- recorded without a channel (before conversations were keyed by channel)
-- goes when its id matches a key's platform id
local drop, bare = {}, {}
for i = 1, #ARGV do
  drop[ARGV[i]] = true
  local colon = string.find(ARGV[i], ':', 1, true)
  if colon then bare[string.sub(ARGV[i], colon + 1)] = true end
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local kept, removed = {}, 0
for _, raw in ipairs(items) do
  local ok, entry = pcall(cjson.decode, raw)
  local hit = false
  if ok and type(entry) == 'table' and type(entry.conversation) == 'string' then
    if type(entry.channel) == 'string' then
      hit = drop[entry.channel .. ':' .. entry.conversation]
    else
      hit = bare[entry.conversation]
    end
  end
  if hit then
    removed = removed + 1
  else
    kept[#kept + 1] = raw
  end
end
if removed == 0 then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
for i = 1, #kept, 500 do
  redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 499, #kept)))
end
if ttl > 0 and #kept > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return removed
