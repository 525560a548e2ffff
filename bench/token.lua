-- wrk script: token requests, form-encoded, the same bytes to every target.
--
--   BENCH_GRANT=client_credentials (default) or implicit
--   BENCH_CLIENT_ID, BENCH_CLIENT_SECRET (the secret is sent for client_credentials only)
--   BENCH_EXPECT_BYTES (optional): the body length every response must have
--
-- `done` prints one line, `BENCH_RESULT {json}`, that bench/run.py parses: requests, seconds,
-- requests/s, latency percentiles in microseconds, wrk's socket errors, and responses that
-- were not 2xx or did not have the expected length.

local function urlencode(value)
  return (value:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function required(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set")
  end
  return value
end

local grant = os.getenv("BENCH_GRANT") or "client_credentials"
local client_id = required("BENCH_CLIENT_ID")
local form = "grant_type=" .. urlencode(grant) .. "&client_id=" .. urlencode(client_id)
if grant == "client_credentials" then
  form = form .. "&client_secret=" .. urlencode(required("BENCH_CLIENT_SECRET"))
elseif grant ~= "implicit" then
  error("BENCH_GRANT must be client_credentials or implicit, not " .. grant)
end

wrk.method = "POST"
wrk.path = "/oauth/access_token"
wrk.body = form
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

-- Per-thread counters (each wrk thread has its own Lua state); summed in `done`.
local threads = {}
local expect_bytes = tonumber(os.getenv("BENCH_EXPECT_BYTES") or "")
non_2xx = 0
wrong_length = 0
first_bad_status = 0

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if first_bad_status == 0 then
      first_bad_status = status
    end
  elseif expect_bytes ~= nil and #body ~= expect_bytes then
    wrong_length = wrong_length + 1
  end
end

function done(summary, latency, requests)
  local bad, short, first = 0, 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non_2xx")
    short = short + thread:get("wrong_length")
    if first == 0 then
      first = thread:get("first_bad_status")
    end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.6f,"rps":%.2f,'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},'
      .. '"non_2xx":%d,"first_bad_status":%d,"wrong_length":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status,
    bad, first, short))
end
