-- Remove a conversation's parked entries of a user, or all of them, for an
-- erasure. A conversation left with none leaves the due set too; its owner
-- finds the list shorter or empty when it comes due, and moves on.
-- KEYS[1] the conversation's parked list
-- KEYS[2] the partition's count of parked entries (same hash tag)
-- KEYS[3] the partition's due set
-- ARGV[1] the user, ARGV[2] "1" to remove every entry,
-- ARGV[3] the conversation's member in the due set
-- Returns how many entries were removed.
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local kept, removed = {}, 0
for _, raw in ipairs(items) do
  local drop = ARGV[2] == '1'
  if not drop then
    local ok, pe = pcall(cjson.decode, raw)
    drop = ok and type(pe) == 'table' and type(pe.event) == 'table' and pe.event.user == ARGV[1]
  end
  if drop then
    removed = removed + 1
  else
    kept[#kept + 1] = raw
  end
end
if #kept == 0 then
  redis.call('ZREM', KEYS[3], ARGV[3])
end
if removed == 0 then
  return 0
end
redis.call('DEL', KEYS[1])
for i = 1, #kept, 500 do
  redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 499, #kept)))
end
if redis.call('DECRBY', KEYS[2], removed) <= 0 then
  redis.call('DEL', KEYS[2])
end
return removed
