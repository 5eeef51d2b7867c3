-- Remove a bot's dead letters of a user or of some conversations.
-- KEYS[1] the bot's dead letters
-- ARGV[1] the user, ARGV[2..] the conversations' keys ("<channel>:<id>")
local drop = {}
for i = 2, #ARGV do drop[ARGV[i]] = true end
local removed = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then
      local ok, ev = pcall(cjson.decode, fields[i + 1])
      if ok and type(ev) == 'table' and (ev.user == ARGV[1] or
          (type(ev.channel) == 'string' and type(ev.conversation) == 'string' and drop[ev.channel .. ':' .. ev.conversation])) then
        redis.call('XDEL', KEYS[1], entry[1])
        removed = removed + 1
      end
    end
  end
end
return removed
