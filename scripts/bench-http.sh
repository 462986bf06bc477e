#!/usr/bin/env bash
# Loopback load benchmark of `medpdp serve`; BENCHMARKS.md explains the method and the figures.
#
# One run measures, on the same machine and workspace:
#  1. in process, one thread on core 0: Cedar's `is_authorized` on the full policy set (the
#     reference rate), on the policy slices, `decide` end to end, and the workspace load time,
#     for the workspace with 1,000 and with 100,000 terminals;
#  2. the service, `taskset -c 0` (one core), driven by wrk on core 1 (`taskset -c 1`, one
#     thread) at 1, 16 and 64 keep-alive connections, bodies rotating over 10,000 distinct
#     requests, in each server mode (decision log durable / async / off); rps and p50/p90/p99;
#  3. RSS of the server with the workspace loaded, after the runs;
#  4. reloads under load: a run at 16 connections while the workspace is edited and reloaded
#     every 2 s, its worst latency against the p99 of the same run without reloads.
#
# Usage: scripts/bench-http.sh [--duration S] [--runs N] [--connections "1 16 64"]
#                              [--modes "sync async off"] [--workspace large|bundled]
#                              [--no-reload] [--no-store-scaling] [--out DIR]
# Installs wrk (apt) if it is missing. Scratch files and results go to target/bench-http/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=10
RUNS=3
CONNECTIONS="1 16 64"
MODES="sync async off"
WORKSPACE=large
RELOAD=1
STORE_SCALING=1
OUT=$ROOT/target/bench-http
PORT=18443

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --workspace) WORKSPACE=$2; shift 2 ;;
    --no-reload) RELOAD=0; shift ;;
    --no-store-scaling) STORE_SCALING=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 64 ;;
  esac
done

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- tools and builds
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
for tool in curl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
log "building (release)"
cargo build --release --quiet --bin medpdp --example workload
BIN=$ROOT/target/release/medpdp
GEN=$ROOT/target/release/examples/workload
LUA=$ROOT/scripts/bench-bodies.lua

# Raise the benchmark's priority over anything else on the machine when allowed (root): on a
# shared machine that keeps neighbours' work from landing on the measured cores. On a quiet
# machine it changes nothing.
PRIO=""
if nice -n -15 true 2>/dev/null; then PRIO="nice -n -15"; fi

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
# One server per mode, all started up front (idle servers cost nothing) so that the rounds can
# interleave the modes: the machine's noise then hits every mode alike.
declare -A PID PORT_OF
stop_servers() {
  for m in "${!PID[@]}"; do
    kill "${PID[$m]}" 2>/dev/null || true
    wait "${PID[$m]}" 2>/dev/null || true
    unset "PID[$m]"
  done
}
trap stop_servers EXIT

# Server flags per mode. A transport (mtls) slots in here once the build has it.
mode_flags() {
  case "$1" in
    sync) echo "--audit-durability sync" ;;
    async) echo "--audit-durability async" ;;
    off) echo "--no-audit" ;;
    *) echo "unknown mode $1" >&2; exit 64 ;;
  esac
}
start_server() { # mode port
  rm -rf "$OUT/data-$1"
  # shellcheck disable=SC2046
  $PRIO taskset -c 0 "$BIN" serve -w "$WS" --listen "127.0.0.1:$2" --data "$OUT/data-$1" \
    $(mode_flags "$1") >"$OUT/server-$1.log" 2>&1 &
  PID[$1]=$!
  PORT_OF[$1]=$2
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$2/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "${PID[$1]}" 2>/dev/null || { cat "$OUT/server-$1.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server ($1) did not become ready" >&2; exit 1
}
wrk_run() { # mode connections seconds -> RESULT line
  $PRIO taskset -c 1 wrk -t1 -c"$2" -d"$3"s -s "$LUA" "http://127.0.0.1:${PORT_OF[$1]}/v1/decide" -- "$BODIES" \
    | grep '^RESULT'
}
get() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

port=$PORT
for mode in $MODES; do
  start_server "$mode" "$port"
  port=$((port + 1))
done
# fdatasync latency of the disk the decision log is on: the floor of a durable answer.
SYNC_MS=$(dd if=/dev/zero of="$OUT/fsync-probe" bs=400 count=100 oflag=dsync 2>&1 \
  | sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p' | awk '{printf "%.2f", $1 * 1000 / 100}')
rm -f "$OUT/fsync-probe"

log "warm-up"
for mode in $MODES; do wrk_run "$mode" 16 2 >/dev/null; done
: > "$OUT/runs.txt"
for round in $(seq 1 "$RUNS"); do
  for c in $CONNECTIONS; do
    for mode in $MODES; do
      log "round $round, c=$c, $mode"
      echo "$mode $c $(wrk_run "$mode" "$c" "$DURATION")" >> "$OUT/runs.txt"
    done
  done
done

say ""
say "service: 1 server core (taskset -c 0), wrk 1 thread on core 1 (taskset -c 1), ${DURATION}s per run,"
say "median of $RUNS runs, modes interleaved; fdatasync on this disk: ${SYNC_MS} ms per write (dd oflag=dsync)"
printf "%-6s %5s %10s %9s %9s %9s %9s %7s\n" mode conns rps p50_us p90_us p99_us max_us errors | tee -a "$RESULTS"
declare -A RPS P50 P99 RSS HWM
for mode in $MODES; do
  for c in $CONNECTIONS; do
    lines=$(awk -v m="$mode" -v c="$c" '$1 == m && $2 == c {$1 = ""; $2 = ""; print}' "$OUT/runs.txt")
    col() { echo "$lines" | while read -r line; do get "$1" "$line"; done | median; }
    errors=$(echo "$lines" | while read -r line; do
      echo $(( $(get non2xx "$line") + $(get socket_errors "$line") )); done | awk '{s+=$1} END{print s}')
    RPS[$mode,$c]=$(col rps); P50[$mode,$c]=$(col p50_us); P99[$mode,$c]=$(col p99_us)
    printf "%-6s %5s %10.0f %9s %9s %9s %9s %7s\n" "$mode" "$c" "${RPS[$mode,$c]}" "${P50[$mode,$c]}" \
      "$(col p90_us)" "${P99[$mode,$c]}" "$(col max_us)" "$errors" | tee -a "$RESULTS"
  done
  RSS[$mode]=$(awk '/^VmRSS/{print $2/1024}' "/proc/${PID[$mode]}/status")
  HWM[$mode]=$(awk '/^VmHWM/{print $2/1024}' "/proc/${PID[$mode]}/status")
done
say ""
for mode in $MODES; do
  say "RSS ($mode): $(printf '%.1f' "${RSS[$mode]}") MiB now, peak $(printf '%.1f' "${HWM[$mode]}") MiB (target <= 64 MiB)"
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
  log "reloads under load (mode $mode)"
  start_server "$mode" "$PORT"
  wrk_run "$mode" 16 2 >/dev/null
  base=$(wrk_run "$mode" 16 "$DURATION")
  POLICY=$(find "$WS" -name '*.cedar' | sort | head -1)
  cp "$POLICY" "$OUT/policy.orig"
  : > "$OUT/reload-times.txt"
  (
    sleep 1
    n=0
    while true; do
      n=$((n + 1))
      printf '\n// reload %d\n' "$n" >> "$POLICY"
      curl -s -o "$OUT/reload.json" -w '%{time_total}\n' -X POST "http://127.0.0.1:$PORT/v1/admin/reload" \
        >> "$OUT/reload-times.txt"
      grep -q '"activated"' "$OUT/reload.json" || echo "reload $n: $(cat "$OUT/reload.json")" >&2
      sleep 2
    done
  ) &
  RELOADER=$!
  loaded=$(wrk_run "$mode" 16 "$DURATION")
  kill "$RELOADER" 2>/dev/null || true
  wait "$RELOADER" 2>/dev/null || true
  cp "$OUT/policy.orig" "$POLICY"
  stop_servers
  reloads=$(wc -l < "$OUT/reload-times.txt")
  slowest=$(sort -n "$OUT/reload-times.txt" | tail -1)
  say ""
  say "reloads under load ($mode, c=16): $reloads reloads, each a new version; admin reload took up to ${slowest}s (target <= 0.5 s)"
  say "  without reloads: rps $(get rps "$base"), p99 $(get p99_us "$base") us, max $(get max_us "$base") us"
  say "  with reloads:    rps $(get rps "$loaded"), p99 $(get p99_us "$loaded") us, max $(get max_us "$loaded") us" \
    "(target: max <= 2 x $(get p99_us "$base") us)"
fi

# ---------------------------------------------------------------- ratios
say ""
first=$(echo "$MODES" | awk '{print $1}')
if [ -n "${RPS[$first,16]:-}" ]; then
  say "ratio: service rps at c=16 ($first) / in-process full-set is_authorized rate ($REF_RPS/s) = $(awk -v a="${RPS[$first,16]}" -v b="$REF_RPS" 'BEGIN{printf "%.2f", a/b}') (target >= 1.0, stretch 1.5)"
fi
for mode in $MODES; do
  if [ -n "${P50[$mode,1]:-}" ]; then
    say "c=1 ($mode): p50 ${P50[$mode,1]} us, p99 ${P99[$mode,1]} us (targets <= 150 / <= 300 us)"
  fi
done
log "results in $RESULTS"
