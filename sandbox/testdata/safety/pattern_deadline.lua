-- timeout: 50ms
-- expect: error timeout
-- max: 500ms
-- The deadline interrupts a pattern match in progress.
function handle(e, s)
  local subject = string.rep("a", 4000)
  while true do
    pcall(string.find, subject, "(.-)(.-)b")
  end
end
