-- timeout: 50ms
-- expect: error timeout
-- max: 1s
-- A comparator that never returns is Lua code under the deadline.
function handle(e, s)
  local t = {3, 1, 2}
  table.sort(t, function(a, b) while true do end end)
end
