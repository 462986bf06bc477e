-- wrk script for scripts/audit-bench.sh: POST /v1/decide with request bodies rotating over a
-- deterministic mix of attach / transmit / read_record requests against the bundled policies
-- (about one in ten brings its own entity), and a count of non-2xx answers.

local bodies = {}
local terminals = {"t-ecg1", "t-ecg-old", "t-mon1", "t-quar", "t-uncert", "t-ghost"}
local slices = {"plmn-miot-health", "plmn-embb-public", "npn-urllc-hospA"}
local seed = 42
local function pick(t)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return t[(seed % #t) + 1]
end
local function env()
  return string.format('{"now":"2026-11-24T10:00:00Z","risk_score":%d,"inside_geofence":%s,"audit_available":%s}',
    pick({5, 10, 40, 90}), pick({"true", "true", "false"}), pick({"true", "true", "true", "false"}))
end

for i = 1, 2000 do
  local kind = pick({0, 0, 1, 1, 2, 2, 3})
  local b
  if kind == 0 then
    b = string.format('{"principal":{"type":"Med5G::Terminal","id":"%s"},"action":"Med5G::Action::\\"attach\\"","resource":"Med5G::NetworkSlice::\\"%s\\"","context":{"env":%s,"attested":%s}}',
      pick(terminals), pick(slices), env(), pick({"true", "true", "false"}))
  elseif kind == 1 then
    b = string.format('{"principal":{"type":"Med5G::Terminal","id":"%s"},"action":"Med5G::Action::\\"transmit\\"","resource":"Med5G::Destination::\\"hospA-monitoring\\"","context":{"env":%s,"slice":{"sst":%d,"sd":"000003","npn":false,"dedicated":true},"tls":{"protocol":"%s","mutual":%s,"client_cert_valid":true},"data":{"type":"Med5G::DataCategory","id":"%s"},"patient":{"type":"Med5G::Patient","id":"%s"},"purpose":"%s","deidentified":false,"payload_encrypted":true,"emergency":%s,"cross_border_approval":false}}',
      pick(terminals), env(), pick({1, 3}), pick({"TLS1.3", "TLS1.2", "TLS1.0"}), pick({"true", "false"}),
      pick({"ecg-stream", "vitals", "hiv-status"}), pick({"P1", "P2"}), pick({"remote_monitoring", "research"}),
      pick({"false", "false", "true"}))
  elseif kind == 2 then
    b = string.format('{"principal":{"type":"Med5G::Clinician","id":"%s"},"action":"Med5G::Action::\\"read_record\\"","resource":{"type":"Med5G::HealthRecord","id":"%s"},"context":{"env":%s,"purpose":"%s","break_glass":%s,"treating_relationship":%s,"justification":"%s"}}',
      pick({"dr-li", "nurse-zhao"}), pick({"r-P1-vitals", "r-P1-hiv"}), env(), pick({"TREAT", "ETREAT"}),
      pick({"false", "true"}), pick({"true", "false"}), pick({"", "cardiac arrest in ward 3"}))
  else
    b = string.format('{"principal":"Med5G::Terminal::\\"t-ecg1\\"","action":"Med5G::Action::\\"attach\\"","resource":"Med5G::NetworkSlice::\\"plmn-miot-health\\"","context":{"env":%s,"attested":true},"entities":[{"uid":{"type":"Med5G::Terminal","id":"t-ecg1"},"attrs":{"model":{"type":"Med5G::DeviceModel","id":"ecg-e2"},"kind":"wearable_ecg","owner":{"type":"Med5G::Facility","id":"hospA"},"certified":true,"lifecycle":"%s","firmware_version":%d,"security_level":1,"allowed_sst":[1,3]},"parents":[{"type":"Med5G::Facility","id":"hospA"}]}]}',
      env(), pick({"active", "quarantined"}), pick({1005000, 1000000}))
  end
  bodies[i] = b
end

local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  n = n + 1
  return wrk.format(nil, "/v1/decide", nil, bodies[(n % #bodies) + 1])
end

done = function(summary, latency, requests)
  io.write(string.format("non2xx %d\n", summary.errors.status))
  io.write(string.format("p50_us %d\np99_us %d\n", latency:percentile(50), latency:percentile(99)))
end
