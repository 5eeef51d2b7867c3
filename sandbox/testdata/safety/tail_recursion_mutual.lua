-- timeout: 100ms
-- expect: error timeout
-- max: 1s
-- Two functions calling each other in tail position share the frame too.
local g
local function f(n) return g(n + 1, "x") end
g = function(n, x) return f(n) end
function handle(e, s)
  return f(1)
end
