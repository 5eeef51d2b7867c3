-- calls: 3
-- Top-level locals are fresh at every call: no state survives in upvalues.
local n = 0
local seen = {}
function handle(e, s)
  n = n + 1
  assert(n == 1, "top-level local persisted: " .. n)
  assert(next(seen) == nil, "top-level table persisted")
  seen[e.conversation] = true
  assert(e.slots.size == "large", "event slots leaked: " .. tostring(e.slots.size))
  e.slots.size = "tampered"
  return "ok"
end
