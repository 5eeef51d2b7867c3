-- Host modules are read-only and do not leak between calls either.
-- calls: 2
function handle(e, s)
  for name, lib in pairs({time = time, re = re, ssml = ssml, store = store, http = http, log = log}) do
    assert(not pcall(function() lib.injected = true end), name .. " accepted a write")
    assert(not pcall(rawset, lib, "x", 1), name .. " accepted rawset")
    assert(getmetatable(lib) == false, name .. " metatable is visible")
    assert(lib.injected == nil)
  end
  assert(not pcall(function() log.info = print end))
  return "ok"
end
