-- Common to every wrk run of the harness (loaded by lua/request.lua): a one-line
-- JSON summary for bench/wrk.py. `bad` and `empty` are per-thread globals that
-- request.lua counts (a 2xx whose body is wrong; a token queue that ran dry);
-- done() runs in a separate Lua state, so it reads them through thread:get().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local bad, empty = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("bad") or 0)
    empty = empty + (thread:get("empty") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "bad": %d, "empty": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, bad, empty, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
