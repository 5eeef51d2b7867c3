-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- Catching the cap and trying again only runs into the deadline.
function handle(e, s)
  local t = {}
  while true do
    local x = string.rep("x", 65536)
    pcall(function() while true do x = x .. x end end)
    t[#t + 1] = x
    if #t > 8 then t = {} end
  end
end
