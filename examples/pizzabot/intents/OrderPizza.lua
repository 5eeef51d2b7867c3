-- Starts an order. A size given up front (slot "size") skips the first question.
local SIZES = {small = true, medium = true, large = true}

function handle(event, session)
  session.order = {size = nil, toppings = {}}
  local size = event.slots and event.slots.size
  if size and SIZES[size:lower()] then
    session.order.size = size:lower()
    return {
      text = "A " .. session.order.size .. " pizza. Which toppings? (for example: mushrooms, olives)",
      expect = "ChooseToppings",
    }
  end
  return {
    text = "Great! What size would you like?",
    options = {"small", "medium", "large"},
    expect = "ChooseSize",
  }
end
