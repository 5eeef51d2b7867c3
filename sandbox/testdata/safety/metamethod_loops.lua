-- timeout: 50ms
-- calls: 7
-- expect: error timeout
-- max: 1s
-- Every metamethod the VM or a built-in calls runs under the deadline; each
-- call of this script loops in a different one.
function handle(e, s)
  local loop = function() while true do end end
  local mt = {__index = loop, __tostring = loop, __eq = loop, __lt = loop, __concat = loop, __call = loop, __newindex = loop}
  local a, b = setmetatable({}, mt), setmetatable({}, mt)
  local which = tonumber(e.user:match("%d+")) % 7
  if which == 0 then return a.missing end
  if which == 1 then return tostring(a) end
  if which == 2 then return a == b end
  if which == 3 then return a < b end
  if which == 4 then return a .. "x" end
  if which == 5 then return a() end
  a.x = 1
end
