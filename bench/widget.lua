-- wrk script for the widget routes. BENCH_DATA names a Lua file (written by bench/run.py)
-- returning {app_id=..., route=..., returning={{id, hash}...}, fresh={{id, hash}...}, ...}.
local data = dofile(os.getenv("BENCH_DATA"))
local threads = {}
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

local counter = 0
local tid = 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")

function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  math.randomseed(os.time() + tid)
  wrk.headers["Content-Type"] = "application/json"
  if data.token then wrk.headers["Authorization"] = "Bearer " .. data.token end
end

local function identify_body()
  local user
  if math.random() < data.returning_share or counter * nthreads + tid >= #data.fresh then
    user = data.returning[math.random(#data.returning)]
  else
    user = data.fresh[counter * nthreads + tid + 1]
    counter = counter + 1
  end
  local id, hash = user[1], user[2]
  local company = "co-" .. (math.random(500))
  return string.format(
    '{"app_id":"%s","visitor_id":"v-%s","user_id":"%s","email":"%s@example.com","name":"User %s",' ..
    '"metadata":{"plan":"enterprise","role":"admin"},' ..
    '"company":{"id":"%s","name":"Company %s","stage":"Qualified","metadata":{"arr_band":"50k-100k","crm_owner":"Sam"}},' ..
    '"user_hash":"%s"}', data.app_id, id, id, id, id, company, company, hash)
end

local function visitor()
  return data.visitors[math.random(#data.visitors)]
end

function request()
  local route = data.route
  if route == "identify" then
    return wrk.format("POST", "/api/widget/identify", nil, identify_body())
  elseif route == "repeat-identify" then
    local user = data.signed_in[math.random(#data.signed_in)]
    local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. user[2]}
    return wrk.format("POST", "/api/widget/identify", headers, user[1])
  elseif route == "echo" then
    return wrk.format("POST", "/api/widget/echo", nil, identify_body())
  elseif route == "track" then
    counter = counter + 1
    local body = string.format(
      '{"app_id":"%s","visitor_id":"%s","event":"page-viewed","properties":{"path":"/pricing","n":%d},"event_id":"e-%d-%d-%d"}',
      data.app_id, visitor(), counter, tid, counter, math.random(1000000000))
    return wrk.format("POST", "/api/widget/track", nil, body)
  elseif route == "set-properties" then
    local body = string.format(
      '{"app_id":"%s","visitor_id":"%s","properties":{"seats":%d,"last_page":"/billing"}}',
      data.app_id, visitor(), math.random(500))
    return wrk.format("POST", "/api/widget/set-properties", nil, body)
  elseif route == "search" then
    local i = math.random(0, data.seeded - 1)
    return wrk.format("GET", "/api/projects/" .. data.app_id .. "/contacts?limit=20&q=seed-" .. i .. "%40")
  elseif route == "detail" then
    local id = math.random(data.min_id, data.max_id)
    return wrk.format("GET", "/api/projects/" .. data.app_id .. "/contacts/" .. id)
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors_status":%d,"errors_connect":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
