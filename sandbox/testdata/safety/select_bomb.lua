-- max: 500ms
-- select and unpack with huge counts fail fast.
function handle(e, s)
  assert(select("#", unpack({}, 1, 100)) == 100)
  local ok, err = pcall(select, 1e9, 1, 2)
  assert(ok and err == nil, tostring(err))
  ok, err = pcall(select, -1e9, 1, 2)
  assert(not ok, "negative select accepted")
  ok, err = pcall(function() return select("#", unpack({}, 1, 1e7)) end)
  assert(not ok and err:find("too many results"), tostring(err))
  ok, err = pcall(function() return string.char(unpack({}, 1, 1e6)) end)
  assert(not ok, "string.char of a million nils accepted")
  ok, err = pcall(unpack, {}, -1e9, 1e9)
  assert(not ok, "unpack of two billion values accepted")
  return "ok"
end
