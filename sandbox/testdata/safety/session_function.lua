-- expect: error runtime cannot store a function
-- Values that are not data cannot go into the session.
function handle(e, s)
  s.keep = "changed"
  s.callback = function() end
  return "ok"
end
