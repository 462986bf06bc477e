#!/usr/bin/env bash
# The transport floor against medpdp, in one run: what loopback + HTTP cost on this machine
# before medpdp does anything, so that the service's figures in BENCHMARKS.md can be split
# into "the machine" and "medpdp".
#
# Servers, each `taskset -c 0` (one core), driven by wrk on core 1 (one thread):
#   floor   examples/http_floor.rs: bare axum + hyper, `GET /static` and `POST /static`
#           (reads the body, answers fixed JSON), and `POST /busy/{us}` (the same after `us` µs
#           of spinning, `us` being what `decide` costs in process on these bodies: the
#           ceiling of a server with no overhead of its own);
#   medpdp  `medpdp serve --no-audit` on the bundled pack, plain-HTTP development listener:
#           `GET /health/live` (every middleware layer, no decision) and `POST /v1/decide`.
# POSTs rotate over the same 10,000 decision bodies. Rounds interleave the servers; the
# figures are medians.
#
# Usage: scripts/bench-floor.sh [--duration S] [--runs N] [--connections "1 16"]
# Installs wrk (apt) if it is missing. Scratch files go to target/bench-floor/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=5
RUNS=3
CONNECTIONS="1 16"
OUT=$ROOT/target/bench-floor
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 64 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

ensure_wrk
log "building (release)"
cargo build --release --quiet --bin medpdp --example workload --example http_floor
BIN=$ROOT/target/release/medpdp
LUA=$ROOT/scripts/bench-bodies.lua

rm -rf "$OUT" && mkdir -p "$OUT"
cp -r policies "$OUT/workspace"
BODIES=$OUT/requests.jsonl
"$ROOT/target/release/examples/workload" bodies "$OUT/workspace" "$BODIES" --requests 10000 >&2
log "in process: decide on core 0"
$PRIO taskset -c 0 "$ROOT/target/release/examples/workload" inprocess "$OUT/workspace" "$BODIES" \
  --secs 5 > "$OUT/inprocess.txt"
DECIDE_RPS=$(sed -n 's/^decide_rps //p' "$OUT/inprocess.txt")
CEDAR_RPS=$(sed -n 's/^cedar_full_rps //p' "$OUT/inprocess.txt")
DECIDE_US=$(awk -v r="$DECIDE_RPS" 'BEGIN{printf "%d", 1e6 / r + 0.5}')

FLOOR_PORT=18090
MEDPDP_PORT=18091
cat > "$OUT/bench.toml" <<TOML
[server]
listen = "127.0.0.1:18491"
max_connections = 4096
[insecure_http]
listen = "127.0.0.1:$MEDPDP_PORT"
identity = "urn:medpdp:gateway:bench"
[access]
dir = "$ROOT/policies/access"
TOML
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
$PRIO taskset -c 0 "$ROOT/target/release/examples/http_floor" "127.0.0.1:$FLOOR_PORT" \
  >"$OUT/floor.log" 2>&1 &
PIDS+=($!)
(cd "$OUT" && exec $PRIO taskset -c 0 "$BIN" serve --config bench.toml -w "$OUT/workspace" \
  --data "$OUT/data" --no-audit >"$OUT/server.log" 2>&1) &
PIDS+=($!)
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$FLOOR_PORT/static" >/dev/null 2>&1 \
    && curl -sf "http://127.0.0.1:$MEDPDP_PORT/health/live" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$MEDPDP_PORT/health/live" >/dev/null || { cat "$OUT/server.log" >&2; exit 1; }

# name -> URL and whether it POSTs the bodies
declare -A URL=(
  [floor-get]="http://127.0.0.1:$FLOOR_PORT/static"
  [floor-post]="http://127.0.0.1:$FLOOR_PORT/static"
  [floor-busy]="http://127.0.0.1:$FLOOR_PORT/busy/$DECIDE_US"
  [medpdp-live]="http://127.0.0.1:$MEDPDP_PORT/health/live"
  [medpdp-decide]="http://127.0.0.1:$MEDPDP_PORT/v1/decide"
)
ORDER="floor-get medpdp-live floor-post floor-busy medpdp-decide"
run() { # name connections -> RESULT line
  local args=()
  case "$1" in *-post|*-busy|*-decide) args=(-- "$BODIES") ;; esac
  $PRIO taskset -c 1 wrk -t1 -c"$2" -d"$DURATION"s -s "$LUA" "${URL[$1]}" "${args[@]}" | grep '^RESULT'
}

for round in $(seq 1 "$RUNS"); do
  for c in $CONNECTIONS; do
    for name in $ORDER; do
      log "round $round: $name c=$c"
      run "$name" "$c" >> "$OUT/$name-c$c.txt"
    done
  done
done

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs, $(uname -sr)"
echo "wrk, ${DURATION}s per run, median of $RUNS; server on core 0, wrk on core 1"
echo "in process, 1 thread: decide $DECIDE_RPS/s ($DECIDE_US µs, floor-busy spins that long);" \
  "Cedar is_authorized on the full set $CEDAR_RPS/s"
printf '| %-14s | %3s | %8s | %8s | %8s | %8s |\n' server c rps "p50 µs" "p99 µs" "µs/req"
printf '|%s|\n' "----------------|-----|----------|----------|----------|----------"
for c in $CONNECTIONS; do
  for name in $ORDER; do
    f=$OUT/$name-c$c.txt
    rps=$(while read -r l; do get rps "$l"; done < "$f" | median)
    p50=$(while read -r l; do get p50_us "$l"; done < "$f" | median)
    p99=$(while read -r l; do get p99_us "$l"; done < "$f" | median)
    errs=$(while read -r l; do echo $(( $(get non2xx "$l") + $(get socket_errors "$l") )); done < "$f" | awk "{s+=\$1} END{print s}")
    [ "$errs" = 0 ] || echo "warning: $name c=$c had $errs errors" >&2
    # Server core time per request at saturation (c > 1): 1 / rps.
    printf '| %-14s | %3s | %8.0f | %8.0f | %8.0f | %8.1f |\n' "$name" "$c" "$rps" "$p50" "$p99" \
      "$(awk -v r="$rps" 'BEGIN{print 1e6 / r}')"
  done
done
