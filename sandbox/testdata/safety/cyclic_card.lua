-- expect: error runtime reply.cards[1].buttons[1] has unknown key "buttons"
function handle(e, s)
  local c = {title = "loop"}
  c.buttons = {c}
  return {cards = {c}}
end
