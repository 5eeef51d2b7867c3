-- wrk script: turns of Parley's web channel (and the floor's), spread over
-- PERF_CONVERSATIONS conversations, with the bearer token PERF_TOKEN.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("PERF_TOKEN") or "")

function request()
  local _, c = common.next()
  return wrk.format(nil, nil, nil, '{"user":"perf-user-' .. c .. '","text":"hello"}')
end

done = common.done
