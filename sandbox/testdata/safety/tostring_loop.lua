-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- A metamethod that Go code calls (tostring, log, string.format) is Lua code
-- under the same deadline.
function handle(e, s)
  local evil = setmetatable({}, {__tostring = function() while true do end end})
  log(evil)
end
