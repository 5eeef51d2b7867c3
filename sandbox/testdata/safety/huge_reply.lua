-- expect: error limit reply is larger than 65536 bytes
function handle(e, s)
  local opts = {}
  for i = 1, 100 do opts[i] = string.rep("o", 1000) end
  return {text = string.rep("t", 60000), options = opts}
end
