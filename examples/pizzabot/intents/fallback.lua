-- Anything the bot did not understand. event.candidates holds near misses.
function handle(event, session)
  local hint = ""
  if event.candidates and #event.candidates > 0 then
    hint = " Did you mean '" .. event.candidates[1].intent .. "'?"
  end
  return {
    text = "I can take pizza orders and tell you our opening hours." .. hint,
    options = {"I want a pizza", "Opening hours"},
  }
end
