-- wrk script of the webhook benchmark (driven by scripts/bench_webhook.py; configured by environment).
--
--   BENCH_SHARDS  path prefix of the request shards: thread i reads BENCH_SHARDS .. i, one request a
--                 line as "<X-Twilio-Signature>\t<urlencoded form body>", and sends them in order, so
--                 no two requests of a run repeat (a thread that runs out wraps and counts it).
--   BENCH_HOST    the Host header.
--   BENCH_MODE    "saturate" (closed loop: each connection sends as soon as its answer is in) or
--                 "paced" (open loop at BENCH_RATE requests/s over all threads; run with one
--                 connection per thread: each thread keeps its own schedule of send times).
--   BENCH_RATE    requests per second in paced mode.
--   BENCH_OUT     path prefix of per-thread latency files in paced mode: one line per answer,
--                 "<latency from the scheduled send time, us> <latency from the actual send, us>".
--
-- done() prints one line "BENCH_JSON {...}" with wrk's own counts and latency percentiles and the
-- status classes counted here.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local mode = os.getenv("BENCH_MODE") or "saturate"
local paced = mode == "paced"

-- Main state: hand each thread its index and keep the threads for done().
local threads = {}
local thread_count = 0
function setup(thread)
  thread:set("id", thread_count)
  table.insert(threads, thread)
  thread_count = thread_count + 1
end

-- Thread state.
local requests = nil
local n, i = 0, 0
used, wrapped = 0, 0
s2xx, s3xx, s4xx, s5xx, sother = 0, 0, 0, 0, 0
late = 0
local out = nil
local interval, next_slot, intended, sent = nil, nil, nil, nil

function init(args)
  local host = os.getenv("BENCH_HOST") or "127.0.0.1"
  local path = os.getenv("BENCH_SHARDS") .. id
  requests = {}
  for line in io.lines(path) do
    local tab = line:find("\t", 1, true)
    local signature, body = line:sub(1, tab - 1), line:sub(tab + 1)
    n = n + 1
    requests[n] = "POST /twilio/messages HTTP/1.1\r\n"
      .. "Host: " .. host .. "\r\n"
      .. "User-Agent: TwilioProxy/1.1\r\n"
      .. "Content-Type: application/x-www-form-urlencoded\r\n"
      .. "Content-Length: " .. #body .. "\r\n"
      .. "X-Twilio-Signature: " .. signature .. "\r\n"
      .. "\r\n" .. body
  end
  if n == 0 then
    error("no requests in " .. path)
  end
  if paced then
    local rate = tonumber(os.getenv("BENCH_RATE"))
    local nthreads = tonumber(os.getenv("BENCH_THREADS"))
    interval = nthreads * 1000000 / rate
    -- Threads start their schedules staggered, so that sends are spread evenly over time.
    next_slot = now_us() + 50000 + id * interval / nthreads
    out = io.open(os.getenv("BENCH_OUT") .. id, "w")
  end
end

function request()
  if requests == nil then
    -- wrk checks the script once in its main state, before any thread exists.
    return wrk.format("POST", "/twilio/messages", { ["Content-Type"] = "application/x-www-form-urlencoded" }, "")
  end
  i = i + 1
  if i > n then
    i = 1
    wrapped = wrapped + 1
  end
  used = used + 1
  if paced then
    sent = now_us()
  end
  return requests[i]
end

if paced then
  function delay()
    local slot = next_slot
    next_slot = next_slot + interval
    intended = slot
    local wait = (slot - now_us()) / 1000
    if wait < 0 then
      late = late + 1 -- the previous answer came after this send was due: it counts from `slot`
      return 0
    end
    return math.floor(wait) -- wrk's timers are whole ms: up to 1 ms early, measured from the send
  end
end

local lines = 0
function response(status, headers, body)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 300 then
    s3xx = s3xx + 1
  else
    sother = sother + 1
  end
  if paced then
    local t = now_us()
    local from = sent
    if intended < from then
      from = intended
    end
    out:write(string.format("%d %d\n", t - from, t - sent))
    lines = lines + 1
    if lines % 500 == 0 then
      out:flush()
    end
  end
end

function done(summary, latency, reqs)
  local totals = { used = 0, wrapped = 0, s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, sother = 0, late = 0 }
  local per_thread_used = {}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
    table.insert(per_thread_used, string.format("%d", thread:get("used") or 0))
  end
  local e = summary.errors
  local parts = {
    string.format('"mode":"%s"', mode),
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
      latency.min, latency.mean, latency.max, latency:percentile(50.0), latency:percentile(90.0),
      latency:percentile(99.0), latency:percentile(99.9)),
    string.format('"used_per_thread":[%s]', table.concat(per_thread_used, ",")),
  }
  for key, value in pairs(totals) do
    table.insert(parts, string.format('"%s":%d', key, value))
  end
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
