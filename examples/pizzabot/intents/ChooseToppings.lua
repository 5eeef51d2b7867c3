-- Third turn: toppings as a list ("mushrooms, olives and ham"), or "none".
local MENU = {mushrooms = true, olives = true, ham = true, pepperoni = true, onions = true, peppers = true}

function handle(event, session)
  local order = session.order
  local toppings = {}
  local unknown = {}
  for word in event.text:lower():gmatch("[%a]+") do
    if MENU[word] then
      table.insert(toppings, word)
    elseif word ~= "and" and word ~= "with" and word ~= "none" and word ~= "no" then
      table.insert(unknown, word)
    end
  end
  if #toppings == 0 and #unknown > 0 then
    return {
      text = "We don't have " .. table.concat(unknown, ", ") .. ". We have mushrooms, olives, ham, pepperoni, onions and peppers.",
      expect = "ChooseToppings",
    }
  end
  order.toppings = toppings
  local summary = "a " .. order.size .. " pizza"
  if #toppings > 0 then
    summary = summary .. " with " .. table.concat(toppings, ", ")
  end
  order.summary = summary
  return {
    text = "So that's " .. summary .. ". Shall I place the order?",
    options = {"yes", "no"},
    expect = "Confirm",
  }
end
