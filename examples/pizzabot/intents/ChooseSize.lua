-- Second turn: the size. Anything else asks again.
local SIZES = {"small", "medium", "large"}

function handle(event, session)
  local text = event.text:lower()
  for _, size in ipairs(SIZES) do
    if text:find(size, 1, true) then
      session.order = session.order or {toppings = {}}
      session.order.size = size
      return {
        text = "A " .. size .. " pizza. Which toppings? (for example: mushrooms, olives)",
        expect = "ChooseToppings",
      }
    end
  end
  return {
    text = "Sorry, we have small, medium and large. Which one?",
    options = SIZES,
    expect = "ChooseSize",
  }
end
