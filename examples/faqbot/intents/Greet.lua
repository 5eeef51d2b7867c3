-- Greets the user and says what the bot knows about.
function handle(event, session)
  return {
    text = "Hi! Ask me anything about Pizza Bot: delivery, payment, allergies, sizes...",
    options = {"Opening hours", "Do you deliver?"},
  }
end
