#!/usr/bin/env bash
# Loopback load benchmark of `medpdp serve`; BENCHMARKS.md explains the method and the figures.
#
# One run measures, on the same machine and workspace:
#  1. in process, one thread on core 0: Cedar's `is_authorized` on the full policy set (the
#     reference rate), on the policy slices, the pre-optimisation path, `decide` end to end, and
#     the workspace load time, for the workspace with 1,000 and with 100,000 terminals;
#  2. the service, `taskset -c 0` (one core), driven from core 1 (`taskset -c 1`, one thread) at
#     1, 16 and 64 keep-alive connections, bodies rotating over 10,000 distinct requests, in
#     each decision-log mode (durable `sync`, `async`, `off`) and transport: plain HTTP driven by
#     wrk (`http`), mTLS driven by examples/loadgen.rs (`mtls`; wrk cannot present a client
#     certificate) and plain HTTP driven by loadgen too (`http-lg`, so that mTLS is compared with
#     plain HTTP under the same load generator); rps and p50/p90/p99;
#  3. RSS of each server with the workspace loaded, after the runs;
#  4. reloads under load: a run at 16 connections while the workspace is edited and reloaded
#     every 2 s, its worst latency against the p99 of the same run without reloads.
#
# Usage: scripts/bench-http.sh [--duration S] [--runs N] [--connections "1 16 64"]
#            [--modes "sync async off"] [--transports "http mtls http-lg"]
#            [--workspace large|bundled] [--no-reload] [--no-store-scaling] [--out DIR]
# Installs wrk (apt) if it is missing. Scratch files and results go to target/bench-http/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=10
RUNS=3
CONNECTIONS="1 16 64"
MODES="sync async off"
TRANSPORTS="http mtls http-lg"
WORKSPACE=large
RELOAD=1
STORE_SCALING=1
OUT=$ROOT/target/bench-http

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --transports) TRANSPORTS=$2; shift 2 ;;
    --workspace) WORKSPACE=$2; shift 2 ;;
    --no-reload) RELOAD=0; shift ;;
    --no-store-scaling) STORE_SCALING=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 64 ;;
  esac
done

# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

# ---------------------------------------------------------------- tools and builds
ensure_wrk
for tool in curl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
log "building (release)"
cargo build --release --quiet --bin medpdp --example workload --example loadgen
BIN=$ROOT/target/release/medpdp
GEN=$ROOT/target/release/examples/workload
LOADGEN=$ROOT/target/release/examples/loadgen
LUA=$ROOT/scripts/bench-bodies.lua


mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: > "$RESULTS"
say() { echo "$*" | tee -a "$RESULTS"; }

# ---------------------------------------------------------------- workspace and bodies
case "$WORKSPACE" in
  large)
    log "generating the large workspace"
    "$GEN" write "$OUT/large" --requests 10000 >&2
    WS=$OUT/large/workspace
    BODIES=$OUT/large/requests.jsonl
    ;;
  bundled)
    rm -rf "$OUT/bundled" && mkdir -p "$OUT/bundled" && cp -r policies "$OUT/bundled/workspace"
    WS=$OUT/bundled/workspace
    BODIES=$OUT/bundled/requests.jsonl
    "$GEN" bodies "$WS" "$BODIES" --requests 10000 >&2
    ;;
  *) echo "--workspace is large or bundled" >&2; exit 64 ;;
esac

say "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs, $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "priority: ${PRIO:-normal (not root)}"
say "workload: $WORKSPACE workspace, $(wc -l < "$BODIES") distinct request bodies"

# ---------------------------------------------------------------- in process
field() { sed -n "s/^$1 //p" "$2"; }
inprocess() { # workspace bodies output
  $PRIO taskset -c 0 "$GEN" inprocess "$1" "$2" --secs 5 > "$3"
  cat "$3" >&2
}
log "in process (core 0)"
inprocess "$WS" "$BODIES" "$OUT/inprocess.txt"
REF_RPS=$(field cedar_full_rps "$OUT/inprocess.txt")
say "in process, 1 thread: $(field workspace: "$OUT/inprocess.txt" | head -1)"
say "  cedar is_authorized, full set: $REF_RPS/s; on slices: $(field cedar_sliced_rps "$OUT/inprocess.txt")/s"
say "  before (Cedar's JSON context parser + full set): $(field reference_rps "$OUT/inprocess.txt")/s; decide end to end: $(field decide_rps "$OUT/inprocess.txt")/s"
if [ "$STORE_SCALING" = 1 ] && [ "$WORKSPACE" = large ]; then
  log "store scaling: 100,000 terminals"
  "$GEN" write "$OUT/large100k" --terminals 100000 --requests 10000 >&2
  inprocess "$OUT/large100k/workspace" "$OUT/large100k/requests.jsonl" "$OUT/inprocess100k.txt"
  D1=$(field decide_rps "$OUT/inprocess.txt"); D100=$(field decide_rps "$OUT/inprocess100k.txt")
  say "  store scaling: decide $D1/s with 1,000 terminals, $D100/s with 100,000: latency ratio $(awk -v a="$D1" -v b="$D100" 'BEGIN{printf "%.2f", a/b}') (target <= 1.2)"
  say "  load time: $(field load_secs "$OUT/inprocess.txt") s (1k), $(field load_secs "$OUT/inprocess100k.txt") s (100k terminals)"
  rm -rf "$OUT/large100k"
fi

# ---------------------------------------------------------------- the service
# One server per decision-log mode, each with a TLS listener (development PKI of its own) and a
# plain-HTTP development listener whose caller is a gateway, so both transports run the same
# access check and the same decision. All are started up front (idle servers cost nothing) so
# that the rounds interleave modes and transports: the machine's noise then hits all alike.
declare -A PID DIR PLAIN TLS
stop_servers() {
  for m in "${!PID[@]}"; do
    kill "${PID[$m]}" 2>/dev/null || true
    wait "${PID[$m]}" 2>/dev/null || true
    unset "PID[$m]"
  done
}
trap stop_servers EXIT

mode_flags() {
  case "$1" in
    sync) echo "--audit-durability sync" ;;
    async) echo "--audit-durability async" ;;
    off) echo "--no-audit" ;;
    *) echo "unknown mode $1" >&2; exit 64 ;;
  esac
}
start_server() { # mode plain-port tls-port
  local dir=$OUT/server-$1
  rm -rf "$dir" && mkdir -p "$dir"
  cat > "$dir/bench.toml" <<TOML
[server]
listen = "127.0.0.1:$3"
max_connections = 4096
[insecure_http]
listen = "127.0.0.1:$2"
identity = "urn:medpdp:gateway:bench"
[access]
dir = "$ROOT/policies/access"
TOML
  # shellcheck disable=SC2046
  (cd "$dir" && exec $PRIO taskset -c 0 "$BIN" serve --config bench.toml -w "$WS" \
    --data "$dir/data" $(mode_flags "$1") >"$dir/server.log" 2>&1) &
  PID[$1]=$!; DIR[$1]=$dir; PLAIN[$1]=$2; TLS[$1]=$3
  for _ in $(seq 1 600); do
    if [ -f "$dir/certs/demo-gateway.key" ] && curl -sf "http://127.0.0.1:$2/health/ready" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "${PID[$1]}" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server ($1) did not become ready" >&2; exit 1
}
load() { # transport mode connections seconds -> RESULT line
  local d=${DIR[$2]}
  case "$1" in
    http)
      $PRIO taskset -c 1 wrk -t1 -c"$3" -d"$4"s -s "$LUA" "http://127.0.0.1:${PLAIN[$2]}/v1/decide" \
        -- "$BODIES" | grep '^RESULT' ;;
    http-lg)
      $PRIO taskset -c 1 "$LOADGEN" --url "http://127.0.0.1:${PLAIN[$2]}/v1/decide" --bodies "$BODIES" \
        --connections "$3" --duration "$4" --warmup 1 --result-line ;;
    mtls)
      $PRIO taskset -c 1 "$LOADGEN" --url "https://localhost:${TLS[$2]}/v1/decide" --bodies "$BODIES" \
        --cacert "$d/certs/ca.pem" --cert "$d/certs/demo-gateway.pem" --key "$d/certs/demo-gateway.key" \
        --connections "$3" --duration "$4" --warmup 1 --result-line ;;
    *) echo "unknown transport $1" >&2; exit 64 ;;
  esac
}

i=0
for mode in $MODES; do
  start_server "$mode" $((18080 + i)) $((18443 + i))
  i=$((i + 1))
done
# fdatasync latency of the disk the decision log is on: the floor of a durable answer.
SYNC_MS=$(dd if=/dev/zero of="$OUT/fsync-probe" bs=400 count=100 oflag=dsync 2>&1 \
  | sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p' | awk '{printf "%.2f", $1 * 1000 / 100}')
rm -f "$OUT/fsync-probe"

log "warm-up"
for mode in $MODES; do for t in $TRANSPORTS; do load "$t" "$mode" 16 2 >/dev/null; done; done
: > "$OUT/runs.txt"
for round in $(seq 1 "$RUNS"); do
  for c in $CONNECTIONS; do
    for mode in $MODES; do
      for t in $TRANSPORTS; do
        log "round $round, c=$c, $t, log $mode"
        echo "$t $mode $c $(load "$t" "$mode" "$c" "$DURATION")" >> "$OUT/runs.txt"
      done
    done
  done
done

say ""
say "service: 1 server core (taskset -c 0), load generator 1 thread on core 1 (taskset -c 1),"
say "${DURATION}s per run, median of $RUNS runs, interleaved; fdatasync here: ${SYNC_MS} ms per write (dd oflag=dsync)"
printf "%-8s %-6s %5s %9s %9s %9s %9s %9s %7s\n" transport log conns rps p50_us p90_us p99_us max_us errors \
  | tee -a "$RESULTS"
declare -A RPS P50 P99
for t in $TRANSPORTS; do
  for mode in $MODES; do
    for c in $CONNECTIONS; do
      lines=$(awk -v t="$t" -v m="$mode" -v c="$c" '$1 == t && $2 == m && $3 == c {$1 = $2 = $3 = ""; print}' "$OUT/runs.txt")
      col() { echo "$lines" | while read -r line; do get "$1" "$line"; done | median; }
      errors=$(echo "$lines" | while read -r line; do
        echo $(( $(get non2xx "$line") + $(get socket_errors "$line") )); done | awk '{s+=$1} END{print s}')
      RPS[$t,$mode,$c]=$(col rps); P50[$t,$mode,$c]=$(col p50_us); P99[$t,$mode,$c]=$(col p99_us)
      printf "%-8s %-6s %5s %9.0f %9s %9s %9s %9s %7s\n" "$t" "$mode" "$c" "${RPS[$t,$mode,$c]}" \
        "${P50[$t,$mode,$c]}" "$(col p90_us)" "${P99[$t,$mode,$c]}" "$(col max_us)" "$errors" | tee -a "$RESULTS"
    done
  done
done
say ""
for mode in $MODES; do
  rss=$(awk '/^VmRSS/{printf "%.1f", $2/1024}' "/proc/${PID[$mode]}/status")
  hwm=$(awk '/^VmHWM/{printf "%.1f", $2/1024}' "/proc/${PID[$mode]}/status")
  say "RSS (log $mode): $rss MiB now, peak $hwm MiB (target <= 64 MiB)"
done
stop_servers

# The reference rate again, after the service runs: the ratio uses the mean of both.
log "in process again (core 0)"
inprocess "$WS" "$BODIES" "$OUT/inprocess-after.txt"
REF_AFTER=$(field cedar_full_rps "$OUT/inprocess-after.txt")
say ""
say "in process again: cedar is_authorized, full set: $REF_AFTER/s; decide: $(field decide_rps "$OUT/inprocess-after.txt")/s"
REF_RPS=$(awk -v a="$REF_RPS" -v b="$REF_AFTER" 'BEGIN{printf "%.0f", (a + b) / 2}')

# ---------------------------------------------------------------- reloads under load
if [ "$RELOAD" = 1 ]; then
  mode=$(echo "$MODES" | awk '{print $1}')
  log "reloads under load (log $mode)"
  start_server "$mode" 18080 18443
  d=${DIR[$mode]}
  load http "$mode" 16 2 >/dev/null
  base=$(load http "$mode" 16 "$DURATION")
  POLICY=$(find "$WS" -name '*.cedar' | sort | head -1)
  cp "$POLICY" "$OUT/policy.orig"
  : > "$OUT/reload-times.txt"
  (
    sleep 1
    n=0
    while true; do
      n=$((n + 1))
      printf '\n// reload %d\n' "$n" >> "$POLICY"
      curl -s -o "$OUT/reload.json" -w '%{time_total}\n' -X POST "https://localhost:18443/v1/admin/reload" \
        --cacert "$d/certs/ca.pem" --cert "$d/certs/demo-admin.pem" --key "$d/certs/demo-admin.key" \
        >> "$OUT/reload-times.txt"
      grep -q '"activated"' "$OUT/reload.json" || echo "reload $n: $(cat "$OUT/reload.json")" >&2
      sleep 2
    done
  ) &
  RELOADER=$!
  loaded=$(load http "$mode" 16 "$DURATION")
  kill "$RELOADER" 2>/dev/null || true
  wait "$RELOADER" 2>/dev/null || true
  cp "$OUT/policy.orig" "$POLICY"
  stop_servers
  reloads=$(wc -l < "$OUT/reload-times.txt")
  slowest=$(sort -n "$OUT/reload-times.txt" | tail -1)
  say ""
  say "reloads under load (http, log $mode, c=16): $reloads reloads, each a new version; admin reload took up to ${slowest}s (target <= 0.5 s)"
  say "  without reloads: rps $(get rps "$base"), p99 $(get p99_us "$base") us, max $(get max_us "$base") us"
  say "  with reloads:    rps $(get rps "$loaded"), p99 $(get p99_us "$loaded") us, max $(get max_us "$loaded") us" \
    "(target: max <= 2 x $(get p99_us "$base") us)"
fi

# ---------------------------------------------------------------- ratios
say ""
for mode in $MODES; do
  if [ -n "${RPS[http,$mode,16]:-}" ]; then
    say "ratio: service rps at c=16 (http, log $mode) / in-process full-set is_authorized rate ($REF_RPS/s) = $(awk -v a="${RPS[http,$mode,16]}" -v b="$REF_RPS" 'BEGIN{printf "%.2f", a/b}') (target >= 1.0 with the durable log, stretch 1.5)"
  fi
done
for mode in $MODES; do
  if [ -n "${P50[http,$mode,1]:-}" ]; then
    say "c=1 (http, log $mode): p50 ${P50[http,$mode,1]} us, p99 ${P99[http,$mode,1]} us (targets <= 150 / <= 300 us)"
  fi
done
for mode in $MODES; do
  for c in $CONNECTIONS; do
    if [ -n "${RPS[mtls,$mode,$c]:-}" ] && [ -n "${RPS[http-lg,$mode,$c]:-}" ]; then
      say "mTLS / plain (loadgen, log $mode, c=$c): $(awk -v a="${RPS[mtls,$mode,$c]}" -v b="${RPS[http-lg,$mode,$c]}" 'BEGIN{printf "%.2f", a/b}') (target >= 0.85)"
    fi
  done
done
log "results in $RESULTS"
