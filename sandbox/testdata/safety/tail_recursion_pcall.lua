-- timeout: 100ms
-- expect: error timeout
-- max: 1s
-- Errors caught inside a deep tail loop cost no more than anywhere else.
local function f(n) if n % 100000 == 0 then error("x") end return f(n + 1) end
function handle(e, s)
  while true do pcall(f, 1) end
end
