#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz + libFuzzer) for a bounded time each.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Installs cargo-fuzz when missing. The toolchain is stable Rust; cargo-fuzz needs nightly
# flags (sanitizers), which RUSTC_BOOTSTRAP=1 enables on it. Seeds are in fuzz/corpus/<target>
# (committed); what the fuzzer finds on top goes to target/fuzz-corpus/<target>, and a crash
# to fuzz/artifacts/<target>/ (the script then exits non-zero). Reproduce a crash with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>` in fuzz/, fix
# it, and add the input to the bad-input battery (tests/it/bad_input*.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(api_decide api_authzen csr log_segment)
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
echo "== building the fuzz targets" >&2
cargo fuzz build
status=0
for t in "${TARGETS[@]}"; do
  work="$ROOT/target/fuzz-corpus/$t"
  mkdir -p "$work" "corpus/$t"
  echo "== $t for ${SECS}s" >&2
  if cargo fuzz run "$t" "$work" "corpus/$t" -- -max_total_time="$SECS" -rss_limit_mb=4096 \
      -print_final_stats=1 2> "$ROOT/target/fuzz-$t.log"; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$ROOT/target/fuzz-$t.log")
    echo "$t: ${runs:-?} inputs in ${SECS}s, no crash; corpus $(ls "$work" | wc -l) entries"
  else
    status=1
    echo "$t: CRASH, see target/fuzz-$t.log and fuzz/artifacts/$t/" >&2
    tail -40 "$ROOT/target/fuzz-$t.log" >&2
  fi
done
exit $status
