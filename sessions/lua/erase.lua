-- Erase a conversation: its lock, state, history and every answer
-- remembered for its messages; then mark it erased, so that a turn in
-- flight commits nothing and a message received before now is refused.
-- KEYS[1] lock key, KEYS[2] state key, KEYS[3] history key,
-- KEYS[4] index of remembered answers (marker keys, in the same slot),
-- KEYS[5] erasure marker
-- ARGV[1] erasure time, ms since the epoch, ARGV[2] marker lifetime ms
-- Returns {state deleted (0|1), history deleted (0|1), answers deleted}
local answers = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  answers = answers + redis.call('DEL', m)
end
local state = redis.call('DEL', KEYS[2])
local hist = redis.call('DEL', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[4])
local prev = tonumber(redis.call('GET', KEYS[5]) or '0')
if tonumber(ARGV[1]) > prev then
  redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[2])
end
return {state, hist, answers}
