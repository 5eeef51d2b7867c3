-- max: 500ms
-- The value stack is bounded and grows in big steps, so this fails fast.
function handle(e, s)
  local ok, err = pcall(unpack, {}, 1, 1e8)
  assert(not ok and err:find("overflow"), err)
  ok, err = pcall(string.byte, string.rep("x", 65536), 1, -1)
  assert(not ok and err:find("overflow"), tostring(err))
  return "ok"
end
