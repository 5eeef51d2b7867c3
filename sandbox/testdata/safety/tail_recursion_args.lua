-- timeout: 100ms
-- expect: error timeout
-- max: 1s
-- The same with an argument that changes (a boxed number per call).
local function f(n) return f(n + 1) end
function handle(e, s)
  return f(1)
end
