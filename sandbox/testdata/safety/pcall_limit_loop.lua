-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- pcall swallowing capped errors in a loop runs into the deadline.
function handle(e, s)
  while true do
    pcall(string.rep, "x", 1e9)
    pcall(error, "again")
    pcall(string.find, string.rep("a", 4000), "(.-)(.-)b")
  end
end
