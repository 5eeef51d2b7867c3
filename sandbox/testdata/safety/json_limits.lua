-- json is bounded both ways.
function handle(e, s)
  local ok, err = pcall(json.decode, string.rep("[", 100) .. string.rep("]", 100))
  assert(not ok and err:find("nested deeper than 32"), err)
  -- No script can build a string over 1 MiB (.. is capped), so the
  -- decoder's input cap is tested in Go.
  local huge = string.rep(" ", 65536)
  ok, err = pcall(function() for i = 1, 5 do huge = huge .. huge end end)
  assert(not ok and err:find("concatenation is larger than"), err)
  local t = {} t.self = t
  ok, err = pcall(json.encode, t)
  assert(not ok and err:find("contains itself"), err)
  local big = {}
  for i = 1, 20 do big[i] = string.rep("x", 65536) end
  ok, err = pcall(json.encode, big)
  assert(not ok and err:find("larger than"), err)
  local dag = {}
  for i = 1, 40 do dag = {a = dag, b = dag} end
  ok, err = pcall(json.encode, dag)
  assert(not ok, "exponential encode accepted")
  return "ok"
end
