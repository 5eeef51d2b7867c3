-- timeout: 30s
-- max: 3s
-- A backtracking pattern gives up after its step budget instead of running
-- for minutes (gopher-lua's matcher takes about 9 minutes on this).
function handle(e, s)
  local subject = string.rep("a", 4000)
  local ok, err = pcall(string.find, subject, "(.-)(.-)b")
  assert(not ok and err:find("pattern too complex"), tostring(err))
  ok, err = pcall(string.gsub, subject, "a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?aaaaaaaaaaaaaaaaaaaab", "")
  assert(not ok and err:find("pattern too complex"), tostring(err))
  -- Subjects are capped; plain find is not.
  local long = string.rep("a", 20000) .. "b"
  ok, err = pcall(string.match, long, "a*b")
  assert(not ok and err:find("longer than 16384"), tostring(err))
  assert(string.find(long, "b", 1, true) == 20001)
  assert(string.find(long, "ab") == 20000)
  return "ok"
end
