-- Hands the conversation to a person.
function handle(event, session)
  log.info("handoff requested", event.conversation)
  return {text = "I'll ask a colleague to get back to you here shortly.", end_conversation = true}
end
