-- wrk script: POST /licenses/new with Nexway's credentials.
-- FRESH=1: every request a new fulfillment (codes issued, one transaction each);
-- otherwise the same call every time (the idempotent replay path).
local fresh = os.getenv("FRESH") == "1"
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- run.sh passes the Basic credential, base64-encoded, in AUTH.
wrk.headers["Authorization"] = "Basic " .. os.getenv("AUTH")

function request()
  local fulfillment = "LOAD-SAME"
  if fresh then
    counter = counter + 1
    fulfillment = string.format("LOAD-%s-%d-%d", os.getenv("RUN") or "x", tid, counter)
  end
  local body = string.format(
    '{"product":{"nexwayFulfillmentId":"%s","nexwayProductId":"NX-1","publisherProductId":"ACME-PRO","quantity":1},"user":{"email":"load@example.com"}}',
    fulfillment)
  return wrk.format(nil, "/licenses/new", nil, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("requests=%d non2xx=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, non2xx, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
