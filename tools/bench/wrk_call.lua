-- wrk script for tools/bench/transport_bench.mjs: POSTs one JSON-RPC tools/call per
-- request (body from WRK_BODY, session from WRK_SESSION when the server uses one) and
-- counts answers that are not HTTP 200 with a JSON-RPC result. Prints one RESULT line.
local session = os.getenv("WRK_SESSION")
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["accept"] = "application/json, text/event-stream"
wrk.headers["mcp-protocol-version"] = os.getenv("WRK_PROTOCOL") or "2025-11-25"
if session and session ~= "" then
  wrk.headers["mcp-session-id"] = session
end

bad = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + (t:get("bad") or 0)
  end
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d bad=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, total_bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
