-- timeout: 100ms
-- expect: error timeout
-- max: 1s
-- An endless tail call reuses one frame. The frame's count of the calls it
-- replaced is capped, so that ending the call does not mean writing a
-- traceback line for each of millions of them after the deadline.
local function f() return f() end
function handle(e, s)
  return f()
end
