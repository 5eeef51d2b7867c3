-- expect: error limit session is larger than 65536 bytes
-- A session over its cap fails the turn; the stored session is unchanged.
function handle(e, s)
  s.keep = "changed"
  s.blob = {}
  for i = 1, 100 do s.blob[i] = string.rep("b", 1000) end
  return "ok"
end
