-- expect: error runtime reply.options[1] must be a string
function handle(e, s)
  local r = {text = "hi"}
  r.options = {}
  r.options[1] = r.options
  return r
end
