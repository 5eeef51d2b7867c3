-- max: 500ms
-- unpack refuses more than 8000 values at once, as Lua 5.1 does, and the
-- value stack is bounded and grows in big steps: both fail fast.
function handle(e, s)
  local ok, err = pcall(unpack, {}, 1, 1e8)
  assert(not ok and err:find("too many results"), err)
  ok, err = pcall(string.byte, string.rep("x", 65536), 1, -1)
  assert(not ok and err:find("overflow"), tostring(err))
  return "ok"
end
