-- The string metatable is private and shared metatables cannot be replaced.
function handle(e, s)
  assert(getmetatable("") == false, "string metatable is visible")
  assert(getmetatable("abc") == false)
  assert(not pcall(function() return getmetatable("").__index end))
  -- gopher-lua's own setmetatable would replace the metatable of all strings.
  assert(not pcall(setmetatable, "", {__index = function() return "pwned" end}))
  assert(not pcall(setmetatable, 1, {}))
  assert(not pcall(setmetatable, tostring, {}))
  assert(not pcall(setmetatable, true, {}))
  assert(("abc"):upper() == "ABC" and ("abc").len == string.len)
  -- Tables keep the usual metatable rules, including protection.
  local t = setmetatable({}, {__index = function(_, k) return k .. "!" end, __metatable = "locked"})
  assert(t.hi == "hi!")
  assert(getmetatable(t) == "locked")
  local ok, err = pcall(setmetatable, t, {})
  assert(not ok and err:find("protected"), err)
  assert(not pcall(setmetatable, {}, 42))
  return "ok"
end
