-- calls: 2
-- expect: error runtime stack overflow
-- max: 1s
-- Recursion through metamethods is bounded like plain recursion.
function handle(e, s)
  local t = setmetatable({}, {__index = function(t, k) return t[k .. "x"] end})
  return t.a
end
