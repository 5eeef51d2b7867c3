-- calls: 2
-- Attempts to reach the shared environment through what is exposed.
function handle(e, s)
  assert(type(string) == "table" and type(tostring) == "function", "a global assignment leaked")
  assert(injected == nil)
  -- Functions handed out are plain values; their environments are not reachable.
  assert(getfenv == nil and debug == nil)
  -- The per-call environment has a protected metatable that is not reachable
  -- either; assigning globals only touches this call's environment.
  string = "shadowed"
  assert(string == "shadowed")
  tostring = function() return "mine" end
  assert(tostring(1) == "mine")
  -- gsub callbacks and metamethods run under the same rules.
  local r = ("abc"):gsub("b", function(c) injected = c return c:upper() end)
  assert(r == "aBc" and injected == "b")
  return "ok"
end
