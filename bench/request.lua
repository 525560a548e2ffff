-- wrk script: one fixed request, the same bytes to every target, with strict checks.
--
--   BENCH_PATH (required), BENCH_METHOD (default GET)
--   BENCH_AUTHORIZATION (optional): the Authorization header, e.g. "Bearer eyJ..."
--   BENCH_CUSTOMER_TOKEN (optional): a shopper's customer token (X-Moltin-Customer-Token)
--   BENCH_ACCOUNT_TOKEN (optional): an account member's account token
--     (EP-Account-Management-Authentication-Token)
--   BENCH_BODY, BENCH_CONTENT_TYPE (optional): the request body and its type
--   BENCH_EXPECT_STATUS (default 200): every response must have this status
--   BENCH_EXPECT_BYTES (optional): the body length every response must have
--
-- `done` prints one line, `BENCH_RESULT {json}`, that bench/run.py parses: requests, seconds,
-- requests/s, latency percentiles in microseconds, wrk's socket errors, and responses that
-- did not have the expected status or length.

local function required(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set")
  end
  return value
end

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = required("BENCH_PATH")
wrk.headers["Accept"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
local customer_token = os.getenv("BENCH_CUSTOMER_TOKEN")
if customer_token ~= nil and customer_token ~= "" then
  wrk.headers["X-Moltin-Customer-Token"] = customer_token
end
local account_token = os.getenv("BENCH_ACCOUNT_TOKEN")
if account_token ~= nil and account_token ~= "" then
  wrk.headers["EP-Account-Management-Authentication-Token"] = account_token
end
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = required("BENCH_CONTENT_TYPE")
end

-- Per-thread counters (each wrk thread has its own Lua state); summed in `done`.
local threads = {}
local expect_status = tonumber(os.getenv("BENCH_EXPECT_STATUS") or "200")
local expect_bytes = tonumber(os.getenv("BENCH_EXPECT_BYTES") or "")
unexpected_status = 0
wrong_length = 0
first_bad_status = 0

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= expect_status then
    unexpected_status = unexpected_status + 1
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
    bad = bad + thread:get("unexpected_status")
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
      .. '"expect_status":%d,"unexpected_status":%d,"first_bad_status":%d,"wrong_length":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status,
    expect_status, bad, first, short))
end
