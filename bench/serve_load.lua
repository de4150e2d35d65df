-- wrk script for bench/serve_load.py: POST /v1/runs with the demo task and an API key, stop after a bounded
-- count of responses, and count every response that is not a finished run (status 200 with end_turn).
-- Arguments (after --): the API key, the number of responses this wrk thread stops after, the JSON body.
-- When the count is reached it prints STOPPED: wrk itself only stops at -d, so the driver times the run from
-- that line and sends SIGINT, after which wrk prints the summary from done().
-- Per-thread state is global: done() reads it with thread:get().
key, limit, body = nil, 0, nil
done_count, bad, durations = 0, 0, {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  key, limit, body = args[1], tonumber(args[2]), args[3]
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function response(status, headers, resp)
  done_count = done_count + 1
  local d = string.match(resp, '.*"duration_s":%s*([%d%.eE%-]+)')  -- the last one is the run's own
  if status ~= 200 or not string.find(resp, '"stop_reason":"end_turn"', 1, true) or not d then
    bad = bad + 1
  else
    table.insert(durations, tonumber(d))
  end
  if done_count == limit then
    io.write("STOPPED\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad_total, durs = 0, {}
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    for _, d in ipairs(thread:get("durations")) do
      table.insert(durs, d)
    end
  end
  local e = summary.errors
  local parts = {}
  for _, d in ipairs(durs) do
    table.insert(parts, string.format("%.6f", d))
  end
  io.write(string.format(
    'RESULT {"requests":%d,"p50_s":%.6f,"p99_s":%.6f,"max_s":%.6f,"bad":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"durations":[%s]}\n',
    summary.requests, latency:percentile(50) / 1e6, latency:percentile(99) / 1e6,
    latency.max / 1e6, bad_total, e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
