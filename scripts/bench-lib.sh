# Helpers shared by the wrk-driven load scripts (bench-http.sh, bench-floor.sh); sourced, not run.

log() { echo "== $*" >&2; }

# Installs wrk (apt) if it is missing.
ensure_wrk() {
  if ! command -v wrk >/dev/null; then
    log "installing wrk"
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
  fi
}

# Raise the benchmark's priority over anything else on the machine when allowed (root): on a
# shared machine that keeps neighbours' work from landing on the measured cores. On a quiet
# machine it changes nothing.
PRIO=""
if nice -n -15 true 2>/dev/null; then PRIO="nice -n -15"; fi

# get KEY "RESULT line": the value of KEY=... in a wrk RESULT line (scripts/bench-bodies.lua).
get() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
