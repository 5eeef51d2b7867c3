-- expect: error runtime cannot store a function
-- Library tables put into the session are proxies of functions.
function handle(e, s)
  s.keep = "changed"
  s.lib = {string.upper}
  return "ok"
end
