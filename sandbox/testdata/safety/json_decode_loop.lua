-- timeout: 100ms
-- expect: error timeout
-- max: 1s
-- json.decode of a large document checks the deadline as it goes.
function handle(e, s)
  local parts = {}
  for i = 1, 60000 do parts[i] = '[1,"ab",{"k":2}]' end
  local doc = "[" .. table.concat(parts, ",") .. "]"
  while true do json.decode(doc) end
end
