-- Cycles through requests read from a file, one per line, and prints a JSON summary when wrk finishes.
--   WRK_INPUT=file WRK_METHOD=GET  : each line is a path with its query string
--   WRK_INPUT=file WRK_METHOD=POST : each line is a JSON body, sent to the URL's path
-- usage: WRK_INPUT=bodies.jsonl WRK_METHOD=POST wrk -t2 -c16 -d10s -s requests.lua http://127.0.0.1:8000/v1/similarity
local method = os.getenv("WRK_METHOD") or "GET"
local lines = {}
for line in io.lines(os.getenv("WRK_INPUT")) do
  lines[#lines + 1] = line
end
local i = 0
local headers = { ["Content-Type"] = "application/json" }

request = function()
  i = i % #lines + 1
  if method == "GET" then
    return wrk.format("GET", lines[i])
  end
  return wrk.format("POST", wrk.path, headers, lines[i])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
