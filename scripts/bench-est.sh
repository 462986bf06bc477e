#!/usr/bin/env bash
# Certificates issued per second over EST (CSR in, certs-only PKCS#7 out), end to end: TLS with
# a manufacturer (IDevID) client certificate, the Cedar issuance decision, signing, the SQLite
# registry commit (synchronous = FULL) and the audit event (sync decision log) per certificate.
#
# Usage: scripts/bench-est.sh [COUNT] [CONCURRENCY] [PROFILE]   (defaults 2000 8 release)
# Runs examples/est_bench.rs, which starts the service in process on 127.0.0.1 in a scratch
# directory and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000}
CONC=${2:-8}
PROFILE=${3:-release}
if [ "$PROFILE" = release ]; then
  cargo run --release --quiet --example est_bench -- "$COUNT" "$CONC"
else
  cargo run --quiet --example est_bench -- "$COUNT" "$CONC"
fi
