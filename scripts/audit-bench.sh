#!/usr/bin/env bash
# Measures the cost of the decision log and the speed of replay (issue 5's figures):
#   1. decisions/s over HTTP with the log in `sync` mode, and with the log disabled, under the
#      same wrk load (server pinned to core 0, wrk to core 1, runs alternated, medians);
#   2. `medpdp audit replay` decisions/s over the log written in step 1, and the in-process
#      `decide` rate over the same requests (examples/audit_eval_rate.rs, same thread count).
# Usage: scripts/audit-bench.sh [connections=64] [seconds=10] [rounds=3]
# Needs: wrk, taskset, curl; builds the release binary. Runs against 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONN=${1:-64}
SECS=${2:-10}
ROUNDS=${3:-3}
PORT=18643
BIN=target/release/medpdp

cargo build --release --quiet
cargo build --release --quiet --example audit_eval_rate
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r policies "$WORK/policies"

start_server() { # $1 = data dir, rest = extra flags
  local data=$1; shift
  # The plain development listener carries the load (its caller, an administrator, may
  # decide); the TLS listener beside it runs in the scratch directory's development PKI.
  (cd "$WORK" && exec taskset -c 0 "$ROOT/$BIN" serve -w "$WORK/policies" --data "$data" \
    --access "$WORK/policies/access" --listen "127.0.0.1:$((PORT + 1))" \
    --insecure-http "127.0.0.1:$PORT" --no-watch --log warn "$@" 2>>"$WORK/serve.log") &
  SERVER=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && return 0
    sleep 0.05
  done
  echo "server did not start" >&2; cat "$WORK/serve.log" >&2; exit 1
}

stop_server() {
  kill -TERM "$SERVER"; wait "$SERVER" || true
}

run_wrk() { # prints requests/s; warm-up first
  taskset -c 1 wrk -t1 -c"$CONN" -d2s -s scripts/audit-bench.lua "http://127.0.0.1:$PORT" >/dev/null
  taskset -c 1 wrk -t1 -c"$CONN" -d"${SECS}s" -s scripts/audit-bench.lua "http://127.0.0.1:$PORT" >"$WORK/wrk.out"
  local non2xx
  non2xx=$(awk '/^non2xx/ {print $2}' "$WORK/wrk.out")
  if [ "${non2xx:-0}" != "0" ]; then echo "warning: $non2xx non-2xx answers" >&2; fi
  awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$WORK/sync.txt"; : >"$WORK/off.txt"
for r in $(seq "$ROUNDS"); do
  start_server "$WORK/data-sync"
  run_wrk >>"$WORK/sync.txt"
  curl -s "http://127.0.0.1:$PORT/v1/status" >"$WORK/status.json"
  stop_server
  start_server "$WORK/data-off" --no-audit
  run_wrk >>"$WORK/off.txt"
  stop_server
  echo "round $r: sync $(tail -1 "$WORK/sync.txt") req/s, no log $(tail -1 "$WORK/off.txt") req/s"
done
SYNC=$(median <"$WORK/sync.txt")
OFF=$(median <"$WORK/off.txt")
echo "HTTP, c=$CONN, ${SECS}s x $ROUNDS rounds (medians): log sync $SYNC req/s, no log $OFF req/s, ratio $(awk -v a="$SYNC" -v b="$OFF" 'BEGIN {printf "%.3f", a/b}')"
grep -o '"commits":[0-9]*\|"records":[0-9]*\|"max_batch":[0-9]*' "$WORK/status.json" | tr '\n' ' '; echo "(last sync run)"

"$BIN" audit verify --data "$WORK/data-sync" | tail -2
"$BIN" audit replay --data "$WORK/data-sync" >"$WORK/replay.out"
cat "$WORK/replay.out"
REPLAY=$(grep -o '[0-9]* decisions/s' "$WORK/replay.out" | awk '{print $1}')
target/release/examples/audit_eval_rate "$WORK/data-sync" >"$WORK/eval.out"
cat "$WORK/eval.out"
EVAL=$(head -1 "$WORK/eval.out" | grep -o '= [0-9]*' | awk '{print $2}')
echo "replay $REPLAY decisions/s, in-process decide $EVAL decisions/s (same threads), ratio $(awk -v a="$REPLAY" -v b="$EVAL" 'BEGIN {printf "%.3f", a/b}')"
