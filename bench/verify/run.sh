#!/usr/bin/env bash
# The verification benchmark: throughput on one core against raw OpenSSL (SEV-SNP reports, TDX
# quotes, Azure SEV-SNP vTPM evidence), and the whole-process time of one verify-report call for
# the first two.
# usage: bench/verify/run.sh BUILD_DIR
set -euo pipefail
build=$1
root="$(cd "$(dirname "$0")/../.." && pwd)"
vectors=${CLOISTER_VECTORS:-$root/../shared/vectors}
report=$vectors/snp/genoa_v5_vcek_report.oak.bin
vcek=$vectors/snp/genoa_vcek.oak.der
quote=$vectors/tdx/phala/quote_v4_b0c06f.dat
collateral=$vectors/tdx/phala/tdx_quote_collateral.json
tdx_at=2025-07-01T00:00:00Z  # inside the phala collateral's validity
azure=$vectors/azure/snp/evidence-v1.json  # its vTPM quote's nonce is "challenge"
if [[ ! -f $report || ! -f $quote || ! -f $azure ]]; then
  echo "bench verify: shared vectors not found at $vectors (set CLOISTER_VECTORS)" >&2
  exit 2
fi
seconds=${BENCH_SECONDS:-3}

echo "SEV-SNP: $(basename "$report") + $(basename "$vcek"), one core (taskset -c 0)"
taskset -c 0 "$build/bench/verify/bench-verify" snp "$report" "$vcek" "$seconds"
echo
echo "TDX: $(basename "$quote") + $(basename "$collateral") at $tdx_at, one core (taskset -c 0)"
taskset -c 0 "$build/bench/verify/bench-verify" tdx "$quote" "$collateral" "$tdx_at" "$seconds"
echo
echo "Azure SEV-SNP vTPM: $(basename "$azure") (Trustee's evidence v1, VCEK carried), one core (taskset -c 0)"
taskset -c 0 "$build/bench/verify/bench-verify" azure-snp "$azure" challenge "$seconds"

# Whole-process time of one verify-report call (hyperfine, 5 warm-up runs).
whole_process() {
  local name=$1 target=$2
  shift 2
  "$build/sdk/verify-report" "$@" >/dev/null
  hyperfine -N --warmup 5 --runs 200 --export-json /tmp/cloister-bench-verify.json \
    "$build/sdk/verify-report $*" >/dev/null
  python3 - "$name" "$target" <<'PY' 2>/dev/null ||
import json, sys
r = json.load(open('/tmp/cloister-bench-verify.json'))['results'][0]
print(f"verify-report ({sys.argv[1]}): mean {r['mean']*1e3:.2f} ms, median {r['median']*1e3:.2f} ms, "
      f"min {r['min']*1e3:.2f} ms ({sys.argv[2]})")
PY
    awk '/"mean"/{gsub(/[",]/,"");print "verify-report mean:", $2*1000, "ms"}' /tmp/cloister-bench-verify.json
}
echo
echo "whole process: one verify-report call"
whole_process SEV-SNP "target < 5 ms; go-sev-guest check ~11 ms" \
  "$report" --certs "$vcek" --at 2025-11-01T00:00:00Z
whole_process TDX "parses the collateral bundle too" \
  "$quote" --collateral "$collateral" --at "$tdx_at"
