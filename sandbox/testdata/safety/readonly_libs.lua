-- The shared libraries cannot be modified, by any route.
local function refused(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "write was accepted")
  return err
end

function handle(e, s)
  for name, lib in pairs({string = string, table = table, math = math, os = os, json = json}) do
    local err = refused(function() lib.injected = true end)
    assert(err:find("attempt to modify a read-only table", 1, true), name .. ": " .. err)
    refused(function() lib.upper = nil end)
    refused(rawset, lib, "injected", true)
    refused(table.insert, lib, 1)
    refused(table.remove, lib)
    refused(table.sort, lib)
    refused(setmetatable, lib, nil)
    refused(setmetatable, lib, {})
    assert(getmetatable(lib) == false, name .. " metatable is visible")
    assert(lib.injected == nil)
    assert(next(lib) == nil, name .. " proxy is not empty")
  end
  refused(function() string.upper = function() return "pwned" end end)
  refused(function() math.pi = 3 end)
  refused(function() os.time = nil end)
  assert(("x"):upper() == "X" and math.pi > 3.14)
  return "ok"
end
