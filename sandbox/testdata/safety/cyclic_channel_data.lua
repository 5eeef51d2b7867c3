-- expect: error runtime reply.channel_data.web.self: table contains itself
function handle(e, s)
  local d = {kind = "menu"}
  d.self = d
  return {text = "hi", channel_data = {web = d}}
end
