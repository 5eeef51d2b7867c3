-- expect: error runtime attempt to index
-- Coroutines are not offered: each one costs tens of KiB.
function handle(e, s)
  assert(coroutine == nil)
  local t = {}
  for i = 1, 1e6 do t[i] = coroutine.create(function() end) end
end
