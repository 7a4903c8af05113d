#!/usr/bin/env bash
# The attestation service's load test (bench/attestd/bench_attestd.cc): attestations per second
# on this machine's cores and p50/p99 of the attest step at half that load, with the SQLite store
# and with two replicas on PostgreSQL behind HAProxy (one killed mid-run and restarted), then
# the audit records checked against the completed flows. Client and service share the machine.
# usage: bench/attestd/run.sh BUILD_DIR     (make bench BENCH=attestd)
#        ATTESTD_BENCH_SECONDS (default 10) and ATTESTD_BENCH_CLIENTS (default 4)
set -euo pipefail
build=$(cd "$1" && pwd)
for f in bench/attestd/bench-attestd service/cloister-attestd; do
  [[ -x "$build/$f" ]] || { echo "bench attestd: $build/$f is missing" >&2; exit 2; }
done
exec "$build/bench/attestd/bench-attestd" "$build/service/cloister-attestd" \
  "${ATTESTD_BENCH_SECONDS:-10}" "${ATTESTD_BENCH_CLIENTS:-4}"
