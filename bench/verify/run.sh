#!/usr/bin/env bash
# The verification benchmark: throughput on one core against raw OpenSSL, and the whole-process
# time of one verify-report call.
# usage: bench/verify/run.sh BUILD_DIR
set -euo pipefail
build=$1
root="$(cd "$(dirname "$0")/../.." && pwd)"
vectors=${CLOISTER_VECTORS:-$root/../shared/vectors}
report=$vectors/snp/genoa_v5_vcek_report.oak.bin
vcek=$vectors/snp/genoa_vcek.oak.der
if [[ ! -f $report ]]; then
  echo "bench verify: shared vectors not found at $vectors (set CLOISTER_VECTORS)" >&2
  exit 2
fi
echo "input: $(basename "$report") + $(basename "$vcek"), one core (taskset -c 0)"
taskset -c 0 "$build/bench/verify/bench-verify" "$report" "$vcek" "${BENCH_SECONDS:-3}"
echo
echo "whole process: verify-report on one report (hyperfine, 5 warm-up runs)"
cmd="$build/sdk/verify-report $report --certs $vcek --at 2025-11-01T00:00:00Z"
"$build/sdk/verify-report" "$report" --certs "$vcek" --at 2025-11-01T00:00:00Z >/dev/null
hyperfine -N --warmup 5 --runs 200 --export-json /tmp/cloister-bench-verify.json "$cmd" >/dev/null
python3 - <<'PY' 2>/dev/null || awk '/"mean"/{gsub(/[",]/,"");print "verify-report mean:", $2*1000, "ms"}' /tmp/cloister-bench-verify.json
import json
r = json.load(open('/tmp/cloister-bench-verify.json'))['results'][0]
print(f"verify-report: mean {r['mean']*1e3:.2f} ms, median {r['median']*1e3:.2f} ms, min {r['min']*1e3:.2f} ms "
      f"(target < 5 ms; go-sev-guest check ~11 ms)")
PY
