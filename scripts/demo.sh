#!/usr/bin/env bash
# make demo: the attested launch end to end on the simulated secure processor (predict the
# measurement, launch the test guest under --tee sim-snp and sim-tdx, fetch its evidence bound to
# a fresh nonce, verify it against the predicted policy and the simulated root), then secret
# release (cloister-attestd gives the attested guests a secret over the KBS protocol and refuses
# a guest whose image has one byte changed), then what the verifier does with real AMD SEV-SNP
# reports and Intel TDX quotes from ../shared/vectors.
set -euo pipefail
build=${1:-build}
root="$(cd "$(dirname "$0")/.." && pwd)"
vectors=${CLOISTER_VECTORS:-$root/../shared/vectors}
snp=$vectors/snp
tdx=$vectors/tdx
vr="$build/sdk/verify-report"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
"$root/scripts/attested-launch.sh" "$build"
"$root/scripts/secret-release.sh" "$build"

if [[ ! -f "$snp/genoa_v5_vcek_report.oak.bin" ]]; then
  echo
  echo "demo: the shared SNP vectors are not at $vectors; check out ../shared beside the"
  echo "      repository or set CLOISTER_VECTORS to see real reports verified."
  exit 0
fi
at="--at 2025-11-01T00:00:00Z"  # the shared certificates are expired today; pin time inside them
verdict() { "$@" --json | grep -o '"verdict": "[a-z]*"' | head -1 || true; }

step "1. A real Genoa report (v5) with its VCEK: every check, secure default policy"
echo "\$ verify-report genoa_v5_vcek_report.oak.bin --certs genoa_vcek.oak.der $at"
"$vr" "$snp/genoa_v5_vcek_report.oak.bin" --certs "$snp/genoa_vcek.oak.der" $at || true

step "2. Revocation with AMD's Genoa CRL, and a measurement allowlist"
"$vr" "$snp/genoa_v5_vcek_report.oak.bin" --certs "$snp/genoa_vcek.oak.der" \
  --crl "$snp/kds_vcek_crl_genoa.openpcc.der" $at \
  --measurement c57729018b0a6fb90dc17bb138b0aa35e4401004283ff4a2c24d3739ff3750f52384370e77b7032862a08c440a9bc4dc \
  | grep -E 'snp.crl|snp.revocation|policy.measurement|^verdict'

step "3. A debug guest (go-sev-guest's report): the default policy refuses it"
"$vr" "$snp/milan_v2_vcek_report.gosevguest.bin" --certs "$snp/milan_vcek.gosevguest.der" $at \
  | grep -E 'FAIL|^verdict' || true

step "4. The same report under a CI policy that allows debug and pins REPORT_DATA"
"$vr" "$snp/milan_v2_vcek_report.gosevguest.bin" --certs "$snp/milan_vcek.gosevguest.der" $at \
  --policy "$root/policies/examples/ci-debug-allowed.json" | grep -E 'policy.guest.debug|policy.report_data|^verdict'

step "5. Tampering: one flipped bit in MEASUREMENT"
tampered=$(mktemp)
trap 'rm -f "$tampered"' EXIT
cp "$snp/genoa_v5_vcek_report.oak.bin" "$tampered"
printf '\x01' | dd of="$tampered" bs=1 seek=$((0x90)) conv=notrunc status=none
"$vr" "$tampered" --certs "$snp/genoa_vcek.oak.der" $at | grep -E 'snp.signature|^verdict' || true

step "6. Turin (8-byte hwID, FMC-first TCB) from the report plus the KDS URL it would fetch"
"$vr" "$snp/turin_v5_vcek_report.oak.bin" $at | grep -E 'snp.vek |kdsintf|^verdict' || true
"$vr" "$snp/turin_v5_vcek_report.oak.bin" --certs "$snp/turin_vcek.oak.der" $at | grep -E 'snp.vek.tcb|snp.vek.identity|^verdict'

if [[ -f "$tdx/phala/quote_v4_b0c06f.dat" ]]; then
  tat="--at 2025-07-01T00:00:00Z"  # inside the phala collateral's validity
  bundle="$tdx/phala/tdx_quote_collateral.json"

  step "7. A real Intel TDX quote (v4) with Intel's collateral: PCK chain, QE, TCB status"
  echo "\$ verify-report quote_v4_b0c06f.dat --collateral tdx_quote_collateral.json $tat"
  "$vr" "$tdx/phala/quote_v4_b0c06f.dat" --collateral "$bundle" $tat || true

  step "8. The same TD pinned by a production policy (MRTD, RTMR0-2, MRSEAM, attributes, TCB)"
  "$vr" "$tdx/phala/quote_v4_b0c06f.dat" --collateral "$bundle" $tat \
    --policy "$root/policies/examples/production-tdx.json" | grep -E 'policy.tdx|^verdict'

  step "9. Intel's TCB status algorithm: a v5 quote whose SEAMLDR SVN is below every TCB level"
  "$vr" "$tdx/phala/quote_v5_outdated_90c06f.dat" --collateral "$tdx/phala/tdx_quote_outdated_collateral.json" \
    --at 2026-03-01T00:00:00Z | grep -E -A2 '^  FAIL  tdx.tcb.status' || true

  step "10. Replaying a TD's CC event log into RTMR0-3 (Container-Optimized OS on TDX)"
  "$vr" "$tdx/gtg/quote_v4_cos113.dat" --event-log "$tdx/gtg/ccel_cos113_eventlog.bin" $tat \
    | grep -E 'tdx.eventlog|tdx.signature' || true

  step "11. Tampering: one flipped bit in MRTD"
  tampered_quote=$(mktemp)
  trap 'rm -f "$tampered" "$tampered_quote"' EXIT
  cp "$tdx/phala/quote_v4_b0c06f.dat" "$tampered_quote"
  printf '\x01' | dd of="$tampered_quote" bs=1 seek=$((48 + 136)) conv=notrunc status=none
  "$vr" "$tampered_quote" --collateral "$bundle" $tat | grep -E 'tdx.signature|^verdict' || true
fi

step "Summary (exit codes: 0 pass, 1 fail, 2 usage)"
printf '  genoa, default policy      %s\n' "$(verdict "$vr" "$snp/genoa_v5_vcek_report.oak.bin" --certs "$snp/genoa_vcek.oak.der" $at)"
printf '  debug guest, default       %s\n' "$(verdict "$vr" "$snp/milan_v2_vcek_report.gosevguest.bin" --certs "$snp/milan_vcek.gosevguest.der" $at)"
printf '  provisional firmware       %s\n' "$(verdict "$vr" "$snp/milan_v2_vcek_report.trustee.bin" --certs "$snp/milan_vcek.trustee.der" $at)"
printf '  AWS VLEK, aws-vlek policy  %s\n' "$(verdict "$vr" "$snp/milan_v3_vlek_report.trustee.bin" --certs "$snp/milan_vlek.trustee.der" $at --policy "$root/policies/examples/aws-vlek.json")"
printf '  tampered measurement       %s\n' "$(verdict "$vr" "$tampered" --certs "$snp/genoa_vcek.oak.der" $at)"
if [[ -f "$tdx/phala/quote_v4_b0c06f.dat" ]]; then
  printf '  TDX quote, default policy  %s\n' "$(verdict "$vr" "$tdx/phala/quote_v4_b0c06f.dat" --collateral "$bundle" $tat)"
  printf '  TDX, production policy     %s\n' "$(verdict "$vr" "$tdx/phala/quote_v4_b0c06f.dat" --collateral "$bundle" $tat --policy "$root/policies/examples/production-tdx.json")"
  printf '  TDX, TCB not supported     %s\n' "$(verdict "$vr" "$tdx/phala/quote_v5_outdated_90c06f.dat" --collateral "$tdx/phala/tdx_quote_outdated_collateral.json" --at 2026-03-01T00:00:00Z)"
  printf '  TDX, tampered MRTD         %s\n' "$(verdict "$vr" "$tampered_quote" --collateral "$bundle" $tat)"
fi
