#!/usr/bin/env bash
# The attested launch, as an operator and a tenant run it (the first part of `make demo`):
#   tenant:   cloister-measure predicts the launch measurement and writes the policy;
#   operator: cloister-vmm launches the test guest on the simulated secure processor;
#   tenant:   a fresh nonce goes to the guest, its evidence comes back over vsock
#             (cloister-agent), and verify-report checks it against the policy, trusting the
#             simulated root by name.
# usage: scripts/attested-launch.sh BUILD_DIR [sim-snp|sim-tdx ...]   (default: both)
# The simulated hosts' keys live in BUILD_DIR/demo-sim-state (created on first use).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
shift || true
tees=("$@")
[[ ${#tees[@]} -gt 0 ]] || tees=(sim-snp sim-tdx)
vmm="$build/vmm/cloister-vmm"
measure="$build/measure/cloister-measure"
agent="$build/sdk/cloister-agent"
vr="$build/sdk/verify-report"
image="$build/tests/vmm/guest/test-guest.bin"
state="$build/demo-sim-state"
for f in "$vmm" "$measure" "$agent" "$vr" "$image"; do
  [[ -x "$f" || -f "$f" ]] || { echo "attested-launch: $f is missing (make build)" >&2; exit 2; }
done
work=$(mktemp -d)
vmm_pid=""
cleanup() {
  [[ -n "$vmm_pid" ]] && kill "$vmm_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s#$build/##g; s#$work/##g"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
json_field() { grep -o "\"$2\":\"[^\"]*\"" "$1" | head -1 | cut -d'"' -f4; }

summary=()
for tee in "${tees[@]}"; do
  case "$tee" in
    sim-snp) kind=snp ;;
    sim-tdx) kind=tdx ;;
    *) echo "attested-launch: unknown TEE '$tee' (sim-snp or sim-tdx)" >&2; exit 2 ;;
  esac
  dir="$work/$tee"
  mkdir -p "$dir"

  step "$tee: the tenant predicts the launch measurement and writes the policy"
  if [[ $kind == snp ]]; then
    args=(snp --ovmf "$image" --vcpus 1 --vcpu-type EPYC-v4 --vmm-type cloister)
  else
    args=(tdx --ovmf "$image" --vcpus 1 --memory 64M)
  fi
  show cloister-measure "${args[@]}" --policy-out policy.json
  predicted=$("$measure" "${args[@]}" --policy-out "$dir/policy.json" | head -1)
  echo "predicted: $predicted"

  step "$tee: the operator launches the test guest on the simulated secure processor"
  nonce=$(openssl rand -hex 64)
  run=(run --firmware "$image" --tee "$tee" --vcpus 1 --memory 64M --sim-state "$state"
    --vsock-uds "$dir/vsock.sock" --cmdline "attest=$kind" --log-format json)
  show cloister-vmm "${run[@]}"
  first_use=""
  [[ -d "$state/$([[ $kind == snp ]] && echo amd/Genoa || echo intel)" ]] ||
    first_use=" (includes creating this host's simulated $([[ $kind == snp ]] && echo AMD || echo Intel) keys, once)"
  start=$(date +%s%N)
  "$vmm" "${run[@]}" >"$dir/serial.txt" 2>"$dir/vmm.log" &
  vmm_pid=$!
  for _ in $(seq 600); do
    grep -q "listening on vsock port" "$dir/serial.txt" 2>/dev/null && break
    kill -0 "$vmm_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q "listening on vsock port" "$dir/serial.txt"; then
    echo "attested-launch: the guest never offered its evidence; VMM log:" >&2
    cat "$dir/vmm.log" "$dir/serial.txt" >&2
    exit 1
  fi
  measured=$(json_field "$dir/vmm.log" "$([[ $kind == snp ]] && echo measurement || echo mrtd)")
  echo "launched; the VMM reports the launch measurement $measured"
  [[ "$measured" == "$predicted" ]] && echo "  = the tenant's prediction" || echo "  differs from the prediction"

  step "$tee: the tenant sends a fresh nonce and receives the guest's evidence over vsock"
  show cloister-agent evidence --vsock vsock.sock --port 9000 --report-data "${nonce:0:16}…" --out evidence
  "$agent" evidence --vsock "$dir/vsock.sock" --port 9000 --report-data "$nonce" --out "$dir/evidence" |
    sed "s#$work/##g"
  wait "$vmm_pid" || { echo "attested-launch: cloister-vmm exited $?" >&2; cat "$dir/vmm.log" >&2; exit 1; }
  vmm_pid=""
  grep -E "^test guest: (evidence|done)" "$dir/serial.txt" | sed 's/^/  guest: /' || true

  step "$tee: the tenant verifies it against the policy, trusting the simulated root"
  if [[ $kind == snp ]]; then
    root_cert="$state/amd/Genoa/ark.crt.pem"
    verify=("$dir/evidence/report.bin" --cert-table "$dir/evidence/cert-table.bin")
  else
    root_cert="$state/intel/root.crt.pem"
    collateral=$(json_field "$dir/vmm.log" collateral)
    verify=("$dir/evidence/quote.bin" --collateral "$collateral" --event-log "$dir/evidence/event-log.bin")
  fi
  verify+=(--trust-root "$root_cert" --policy "$dir/policy.json" --report-data "$nonce")
  show verify-report "${verify[@]}"
  status=0
  "$vr" "${verify[@]}" >"$dir/verdict.txt" || status=$?
  elapsed=$(ms_since "$start")
  sed "s#$work/##g" "$dir/verdict.txt"
  echo "launch to verdict: $elapsed ms$first_use (verify-report exit $status)"
  summary+=("$(printf '  %-8s %-5s measurement %s…  launch to verdict %5d ms' "$tee" \
    "$([[ $status -eq 0 ]] && echo PASS || echo FAIL)" "${measured:0:24}" "$elapsed")")
  [[ $status -eq 0 ]] || { echo "attested-launch: $tee did not verify" >&2; exit 1; }
done

step "Attested launch: summary (simulated secure processor; no hardware claims)"
printf '%s\n' "${summary[@]}"
