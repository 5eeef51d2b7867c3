-- timeout: 200ms
-- expect: error timeout
-- max: 2s
-- Building capped results in a loop and keeping them is charged to the
-- call and ended by its deadline (or by the heap guard under a limit).
function handle(e, s)
  local keep = {}
  local src = string.rep("a", 4096)
  while true do keep[#keep + 1] = re.replace(src, "a", "bbbbbbbb") end
end
