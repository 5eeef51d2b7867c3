-- Greets the user; remembers whether we have met in this conversation.
function handle(event, session)
  local again = session.greeted
  session.greeted = true
  if again then
    return "Hello again! Want to order a pizza?"
  end
  return {
    text = "Hi! I'm Pizza Bot. I can take your order or tell you our opening hours.",
    options = {"I want a pizza", "Opening hours"},
  }
end
