-- max: 500ms
-- gopher-lua fills the array part up to a new integer key in one step; with
-- its default bound this single statement allocates gigabytes.
function handle(e, s)
  local t = {}
  t[67108000] = 1
  assert(t[67108000] == 1)
  local u = {}
  table.insert(u, 60000000, "x")
  assert(u[60000000] == "x")
  local v = {}
  v[200000] = 1
  assert(v[200000] == 1)
  local w = {}
  for i = 1, 1000 do w[i] = i end
  assert(#w == 1000)
  return "ok"
end
