-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- A table grows until the deadline; the heap guard bounds the memory
-- (TestHeapGuard).
function handle(e, s)
  local t = {}
  local i = 0
  while true do
    i = i + 1
    t[i] = {i, tostring(i)}
  end
end
