-- calls: 2
-- Bad intervals are Lua errors, not Go panics that cost a VM.
function handle(e, s)
  assert(not pcall(math.random, 0))
  assert(not pcall(math.random, 5, 1))
  assert(not pcall(math.random, 0/0))
  assert(not pcall(math.random, 1, 2, 3))
  for i = 1, 100 do
    local r = math.random(3, 5)
    assert(r >= 3 and r <= 5 and r == math.floor(r))
    local f = math.random()
    assert(f >= 0 and f < 1)
  end
  assert(math.random(1) == 1)
  return "ok"
end
