-- POSTs JSON bodies read from a file, one per line, each sent once at most: wrk's threads take alternate lines
-- (thread t sends lines offset+t, offset+t+threads, ...), so no two requests of a run carry the same body while
-- the file lasts. WRK_OFFSET starts a run further into the file (a second run sends bodies the first did not).
-- usage: WRK_INPUT=bodies.jsonl WRK_OFFSET=0 wrk -t2 -c16 -d10s -s distinct.lua http://127.0.0.1:8000/v1/complete
local lines = {}
for line in io.lines(os.getenv("WRK_INPUT")) do
  lines[#lines + 1] = line
end
local headers = { ["Content-Type"] = "application/json" }
local threads = 0

setup = function(thread)
  thread:set("index", threads)
  threads = threads + 1
end

init = function()
  step = tonumber(os.getenv("WRK_THREADS") or "1")
  i = tonumber(os.getenv("WRK_OFFSET") or "0") + index
end

request = function()
  local line = lines[i % #lines + 1]
  i = i + step
  return wrk.format("POST", wrk.path, headers, line)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
