-- Delete a conversation: its lock, state, history and every answer
-- remembered for its messages.
-- KEYS[1] lock key, KEYS[2] state key, KEYS[3] history key,
-- KEYS[4] index of remembered answers (marker keys, in the same slot)
local markers = redis.call('ZRANGE', KEYS[4], 0, -1)
for _, m in ipairs(markers) do
  redis.call('DEL', m)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return #markers
