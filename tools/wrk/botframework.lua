-- wrk script: Bot Framework message activities for the Bot Framework SDK
-- peer, one conversation per user, with deliveryMode expectReplies so that
-- the bot answers in the HTTP response (as Parley's web channel does)
-- instead of calling a connector back.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  local n, c = common.next()
  local body = '{"type":"message","id":"perf-' .. common.run .. '-' .. n .. '","channelId":"test","serviceUrl":"http://127.0.0.1:9/",' ..
    '"from":{"id":"perf-user-' .. c .. '"},"recipient":{"id":"perf-bot"},"conversation":{"id":"perf-conv-' .. c .. '"},' ..
    '"text":"hello","deliveryMode":"expectReplies"}'
  return wrk.format(nil, nil, nil, body)
end

done = common.done
