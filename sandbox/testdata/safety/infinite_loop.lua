-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
function handle(e, s)
  local i = 0
  while true do i = i + 1 end
end
