-- Every turn the classifier is not confident about. The model answers it
-- from the FAQ, and the answer is shown while the model writes it (stream);
-- when the FAQ does not cover the question the model calls hand_off, and
-- the turn gets the classic fallback instead.
local FAQ = [[
Pizza Bot FAQ
- Opening hours: every day 11:00-23:00; the kitchen closes at 22:30.
- Delivery: within 5 km of the shop, about 30-45 minutes; free over 20 euros, else 3 euros.
- Payment: cash, cards, Apple Pay and Google Pay.
- Allergies: gluten-free base on request (not certified: the kitchen uses wheat flour); vegan cheese.
- Sizes: small 25 cm, medium 30 cm, large 35 cm.
- Address: Via Roma 12, Milan.
]]

local SYSTEM = "You answer customers' questions about Pizza Bot from this FAQ only, in at most " ..
  "three short sentences. If the FAQ does not answer the question, call hand_off and write nothing.\n\n" .. FAQ

local HAND_OFF = {name = "hand_off", description = "The FAQ does not answer the question.",
                  parameters = {type = "object", properties = {reason = {type = "string"}}}}

-- What the options of the classic fallback say for the classifier's near misses.
local ASK = {Hours = "Opening hours", Greet = "Hello"}

function handle(event, session)
  local r, err = llm.chat{
    messages = {{role = "system", content = SYSTEM}, {role = "user", content = event.text}},
    tools = {HAND_OFF},
    temperature = 0.2,
    max_tokens = 200,
    stream = true,
  }
  if not r then
    log.warn(err)
    return fallback(event, "I can't look that up right now.")
  end
  if #r.tool_calls > 0 or r.text == "" then
    return fallback(event, "I'm not sure about that one.")
  end
  return r.text
end

-- fallback is the answer to a turn nobody understood: the classifier's
-- near misses, and a person.
function fallback(event, why)
  local options = {}
  for _, c in ipairs(event.candidates or {}) do
    if ASK[c.intent] and #options < 2 then
      options[#options + 1] = ASK[c.intent]
    end
  end
  options[#options + 1] = "Talk to a person"
  return {text = why .. " Did you mean one of these?", options = options}
end
