-- wrk script: Alexa IntentRequests with a slot, one session per
-- conversation, for the skill PERF_SKILL, stamped with the current time
-- (Alexa skills refuse requests more than 150 s old).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local skill = os.getenv("PERF_SKILL") or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local stamp, stampedAt = "", -1

function request()
  local n, c = common.next()
  local now = os.time()
  if now ~= stampedAt then
    stamp, stampedAt = os.date("!%Y-%m-%dT%H:%M:%SZ", now), now
  end
  local session = "amzn1.echo-api.session.perf-" .. c
  local user = "amzn1.ask.account.perf-" .. c
  local body = '{"version":"1.0","session":{"new":false,"sessionId":"' .. session ..
    '","application":{"applicationId":"' .. skill .. '"},"attributes":{},"user":{"userId":"' .. user ..
    '"}},"context":{"System":{"application":{"applicationId":"' .. skill .. '"},"user":{"userId":"' .. user ..
    '"},"device":{"deviceId":"amzn1.ask.device.perf","supportedInterfaces":{}},"apiEndpoint":"https://api.amazonalexa.com"}},' ..
    '"request":{"type":"IntentRequest","requestId":"amzn1.echo-api.request.perf-' .. common.run .. '-' .. n .. '","timestamp":"' .. stamp ..
    '","locale":"en-US","intent":{"name":"OrderPizza","confirmationStatus":"NONE","slots":{"size":' ..
    '{"name":"size","value":"large","confirmationStatus":"NONE"}}}}}'
  return wrk.format(nil, nil, nil, body)
end

done = common.done
