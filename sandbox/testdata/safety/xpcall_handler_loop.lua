-- timeout: 50ms
-- expect: error timeout
-- max: 1s
-- An xpcall message handler that loops is stopped by the deadline; xpcall
-- then returns false, and handle returns that: the outcome is still a timeout.
function handle(e, s)
  return xpcall(error, function() while true do end end)
end
