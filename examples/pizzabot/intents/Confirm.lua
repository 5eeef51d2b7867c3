-- Last turn: yes places the order and ends the conversation; no cancels it.
function handle(event, session)
  local answer = event.text:lower()
  if answer:find("^%s*y") or answer:find("sure", 1, true) or answer:find("ok", 1, true) then
    local number = os.time() % 100000
    log("order placed: " .. session.order.summary)
    return {
      text = "Done! Order #" .. number .. " (" .. session.order.summary .. ") will be ready in 20 minutes.",
      end_conversation = true,
    }
  end
  if answer:find("^%s*n") then
    return {text = "No problem, I've cancelled it. Anything else?", end_conversation = true}
  end
  return {text = "Please answer yes or no.", options = {"yes", "no"}, expect = "Confirm"}
end
