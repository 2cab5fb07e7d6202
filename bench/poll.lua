-- wrk script for bench/load.py: poll one URL (its headers come from wrk -H) until the duration ends or each
-- thread has had its share of answers (the first script argument), then print one JSON line of figures.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(args[1]) or 0
  answered = 0
  unexpected = 0
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 and status ~= 286 then  -- 286: htmx's "stop polling", a normal answer for a finished job
    unexpected = unexpected + 1
  end
  if limit > 0 and answered >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local unexpected_total = 0
  for _, thread in ipairs(threads) do
    unexpected_total = unexpected_total + thread:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %.0f, "p50_us": %.0f, "p95_us": %.0f, "p99_us": %.0f, ' ..
    '"max_us": %.0f, "unexpected_status": %d, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, unexpected_total, e.connect + e.read + e.write, e.timeout))
end
