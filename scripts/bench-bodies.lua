-- wrk script for scripts/bench-http.sh: POSTs decision requests read from a file (one JSON
-- body per line), rotating through all of them, and prints one machine-readable RESULT line.
--
--   wrk -t1 -c16 -d10s -s scripts/bench-bodies.lua http://127.0.0.1:18443/v1/decide -- bodies.jsonl
--
-- Without a bodies file it sends plain GETs of the URL (scripts/bench-floor.sh).

local bodies = {}
local next_body = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  if args[1] == nil then
    return
  end
  for line in io.lines(args[1]) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  if #bodies == 0 then
    error("no request bodies in " .. tostring(args[1]))
  end
  -- Threads start at different offsets so that they do not send the same sequence.
  next_body = math.random(#bodies) - 1
end

function request()
  if #bodies == 0 then
    return wrk.format("GET")
  end
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[next_body])
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d socket_errors=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
