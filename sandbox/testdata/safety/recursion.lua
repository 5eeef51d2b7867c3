-- calls: 2
-- expect: error runtime stack overflow
-- max: 1s
-- Deep recursion fails cleanly; the next call gets a working VM.
local function f(n) return 1 + f(n + 1) end
function handle(e, s)
  return f(1)
end
