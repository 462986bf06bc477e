#!/usr/bin/env bash
# Decisions/s over mTLS keep-alive vs plain loopback HTTP, same load, same run.
#
# Starts one release `medpdp serve` in a scratch copy of the repository with both listeners:
# the TLS listener (first-run development PKI, demo gateway certificate) and the plain-HTTP
# development listener whose identity is also a gateway, so both paths run the same access
# check and the same decision. Then drives each with examples/loadgen.rs (HTTP/1.1 keep-alive,
# closed loop), alternating plain/mTLS ROUNDS times, and prints one line per run. Finally
# examples/access_overhead.rs measures the access check's share of a request in process.
#
# Usage: scripts/bench-mtls.sh [CONNECTIONS] [SECONDS] [ROUNDS]   (defaults 32 10 2)
# Needs: cargo; nothing else. Runs on 127.0.0.1 ports 18443/18080.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-32}
SECS=${2:-10}
ROUNDS=${3:-2}

cargo build --release --quiet --bin medpdp --example loadgen --example access_overhead
ROOT=$PWD
BIN=$ROOT/target/release

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cp -r policies "$WORK/"
cat > "$WORK/bench.toml" <<'TOML'
[server]
listen = "127.0.0.1:18443"
max_connections = 4096
[insecure_http]
listen = "127.0.0.1:18080"
identity = "urn:medpdp:gateway:bench-plain"
[log]
filter = "warn"
TOML
cat > "$WORK/request.json" <<'JSON'
{"principal": {"type": "Med5G::Terminal", "id": "t-ecg1"},
 "action": "Med5G::Action::\"attach\"",
 "resource": {"type": "Med5G::NetworkSlice", "id": "plmn-miot-health"},
 "context": {"env": {"now": "2026-11-24T10:00:00Z", "risk_score": 10, "inside_geofence": true, "audit_available": true}, "attested": true}}
JSON

cd "$WORK"
"$BIN/medpdp" serve --config bench.toml >/dev/null 2>server.log &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if [ -f certs/demo-gateway.key ] && curl -sf http://127.0.0.1:18080/health/ready >/dev/null; then break; fi
  sleep 0.1
done

echo "machine: $(nproc) cores, $(uname -sr); server and load generator share them"
echo "load: $CONNS keep-alive HTTP/1.1 connections, closed loop, ${SECS}s measured after 2s warm-up, POST /v1/decide (allow)"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round plain: $("$BIN/examples/loadgen" --json --connections "$CONNS" --duration "$SECS" \
    --url http://127.0.0.1:18080/v1/decide --body request.json)"
  echo "round $round mtls:  $("$BIN/examples/loadgen" --json --connections "$CONNS" --duration "$SECS" \
    --url https://localhost:18443/v1/decide --body request.json \
    --cacert certs/ca.pem --cert certs/demo-gateway.pem --key certs/demo-gateway.key)"
done
echo "access check in process (one thread):"
"$BIN/examples/access_overhead" policies policies/access 20000 | sed 's/^/  /'
