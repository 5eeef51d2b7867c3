-- Shared by the request scripts of scripts/perf.sh: the conversation
-- counter and the result line. wrk runs one Lua state per thread; with one
-- thread (-t1) the counter walks the conversations in order, so that the
-- 32 requests in flight never share one.
local M = {}

M.conversations = tonumber(os.getenv("PERF_CONVERSATIONS") or "10000")

-- run tells this run's requests from those of the runs before it, whose
-- ids a server may still remember (a retried platform request is answered
-- from memory): each request id of a run is new.
math.randomseed(os.time())
M.run = string.format("%d%06d", os.time(), math.random(0, 999999))

local n = 0
-- next returns the next request's sequence number and conversation number.
function M.next()
  n = n + 1
  return n, n % M.conversations
end

-- done prints one machine-readable line for scripts/perf.sh: requests,
-- duration and errors from wrk's summary, and latency percentiles in
-- microseconds from its histogram.
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end

return M
