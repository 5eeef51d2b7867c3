-- calls: 3
-- Globals set by one call are gone in the next, in any conversation.
function handle(e, s)
  assert(last_user == nil, "global leaked from an earlier call: " .. tostring(last_user))
  assert(cache == nil)
  assert(rawget(e, "stash") == nil)
  last_user = e.user
  cache = {conversation = e.conversation}
  e.stash = true
  e.slots.size = "tampered"
  return "ok"
end
