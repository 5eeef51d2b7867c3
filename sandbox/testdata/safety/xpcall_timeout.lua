-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- Neither can an error handler that loops.
function handle(e, s)
  while true do
    xpcall(function() while true do end end, function(err) while true do end end)
  end
end
