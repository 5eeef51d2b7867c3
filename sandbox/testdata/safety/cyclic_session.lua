-- expect: error runtime contains itself
function handle(e, s)
  s.keep = "changed"
  s.loop = {}
  s.loop.back = s.loop
  return "ok"
end
