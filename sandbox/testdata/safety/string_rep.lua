-- One call cannot allocate without bound.
function handle(e, s)
  local ok, err = pcall(string.rep, "x", 1e9)
  assert(not ok and err:find("larger than 65536 bytes"), err)
  assert(not pcall(function() return ("x"):rep(1e9) end))
  assert(not pcall(string.rep, "abcd", 16385))
  assert(#string.rep("abcd", 16384) == 65536)
  assert(string.rep("x", 0) == "" and string.rep("x", -5) == "" and string.rep("", 1e9) == "")
  assert(string.rep("x", 0/0) == "")
  -- table.concat, gsub and format are capped too.
  local parts = {}
  for i = 1, 20 do parts[i] = string.rep("y", 65536) end
  ok, err = pcall(table.concat, parts)
  assert(not ok and err:find("larger than"), err)
  ok, err = pcall(string.gsub, string.rep("a", 16000), "a", string.rep("b", 1000))
  assert(not ok and err:find("larger than"), err)
  ok, err = pcall(string.gsub, string.rep("a", 16000), "a", function() return string.rep("b", 100) end)
  assert(not ok and err:find("larger than"), err)
  ok, err = pcall(string.format, "%99999d", 1)
  assert(not ok and err:find("too long"), err)
  ok, err = pcall(string.format, "%*d", 5, 1)
  assert(not ok, "format accepted *")
  ok, err = pcall(string.format, string.rep("%s", 100), unpack((function()
    local t = {} for i = 1, 100 do t[i] = string.rep("z", 65536) end return t end)()))
  assert(not ok and err:find("larger than"), err)
  assert(string.format("%5.1f|%-3d|%s", 3.14159, 7, "x") == "  3.1|7  |x")
  ok, err = pcall(os.date, string.rep("%Y", 200))
  assert(not ok and err:find("longer than 256"), err)
  return "ok"
end
