-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- pcall cannot swallow the deadline.
function handle(e, s)
  while true do
    pcall(function() while true do end end)
  end
end
