#!/usr/bin/env bash
# Secret release, the end of `make demo`: the tenant runs cloister-attestd with the reference
# values cloister-measure predicts and a secret, the operator launches the test guest on the
# simulated secure processor, and cloister-agent (beside the VMM; on hardware it runs inside the
# guest) attests through the KBS protocol and receives the secret. Then a guest image with one
# byte changed asks for the same secret and is refused, with the reason.
# usage: scripts/secret-release.sh BUILD_DIR [sim-snp|sim-tdx ...]   (default: both)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
shift || true
tees=("$@")
[[ ${#tees[@]} -gt 0 ]] || tees=(sim-snp sim-tdx)
vmm="$build/vmm/cloister-vmm"
measure="$build/measure/cloister-measure"
agent="$build/sdk/cloister-agent"
attestd="$build/service/cloister-attestd"
image="$build/tests/vmm/guest/test-guest.bin"
sim_state="$build/demo-sim-state"
for f in "$vmm" "$measure" "$agent" "$attestd" "$image"; do
  [[ -e "$f" ]] || { echo "secret-release: $f is missing (make build)" >&2; exit 2; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s#$build/##g; s#$work/##g"; }

# The simulated hosts' roots (and the TDX collateral) exist once a guest has run on them:
# attested-launch.sh (the demo's first part) creates them; create them here when run alone.
if [[ ! -f "$sim_state/amd/Genoa/ark.crt.pem" || ! -f "$sim_state/intel/root.crt.pem" ]]; then
  "$(dirname "$0")/attested-launch.sh" "$build" >/dev/null
fi

step "The tenant predicts the reference values and starts cloister-attestd"
"$measure" snp --ovmf "$image" --vcpus 1 --vcpu-type EPYC-v4 --vmm-type cloister \
  --policy-out "$work/snp.json" >/dev/null
"$measure" tdx --ovmf "$image" --vcpus 1 --memory 64M --policy-out "$work/tdx.json" >/dev/null
python3 - "$work/snp.json" "$work/tdx.json" >"$work/reference-values.json" <<'EOF'
import json, sys
snp, tdx = (json.load(open(p)) for p in sys.argv[1:3])
print(json.dumps({"version": 1, "snp": snp["snp"], "tdx": tdx["tdx"]}, indent=2))
EOF
collateral=$(ls "$sim_state"/intel/collateral/*.json 2>/dev/null | head -1 || true)
serve=(--listen 127.0.0.1:0 --state-dir "$work/attestd" --trust-root "$sim_state/amd/Genoa/ark.crt.pem"
  --trust-root "$sim_state/intel/root.crt.pem")
[[ -n "$collateral" ]] && serve+=(--tdx-collateral "$collateral")
show cloister-attestd "${serve[@]}"
"$attestd" "${serve[@]}" >"$work/attestd.out" 2>"$work/attestd.log" &
pids+=($!)
port=""
for _ in $(seq 200); do
  port=$(grep -o '"port":[0-9]*' "$work/attestd.log" 2>/dev/null | head -1 | cut -d: -f2 || true)
  [[ -n "$port" ]] && break
  sleep 0.05
done
[[ -n "$port" ]] || { echo "secret-release: cloister-attestd did not start:" >&2; cat "$work/attestd.log" >&2; exit 1; }
kbs="https://127.0.0.1:$port"
cert="$work/attestd/tls.crt"
admin_key=$(sed -n 's/^admin key (shown once, keep it): //p' "$work/attestd.out")
echo "serving $kbs (TLS 1.3, self-signed certificate $(basename "$cert")); admin key shown once"

admin() {
  curl -sS --fail-with-body --cacert "$cert" -H "Authorization: Bearer $admin_key" "$@"
}
show "curl -X PUT $kbs/admin/v0/reference-values/default --data @reference-values.json"
admin -X PUT "$kbs/admin/v0/reference-values/default" --data-binary @"$work/reference-values.json"
echo
secret="the tenant's disk passphrase: $(openssl rand -hex 8)"
value=$(printf '%s' "$secret" | base64 -w0)
# Simulated guests appraise as "warning" (no TEE hardware); real hardware gives "affirming".
policy='{"accept_status": ["affirming", "warning"], "tees": ["snp", "tdx"]}'
show "curl -X PUT $kbs/admin/v0/resources/tenant/disk/passphrase --data '{\"value\": …, \"policy\": $policy}'"
admin -X PUT "$kbs/admin/v0/resources/tenant/disk/passphrase" \
  --data-binary "{\"value\": \"$value\", \"policy\": $policy}"
echo

# Launches `image` under `tee` with a vsock socket and waits until the guest offers evidence.
launch() {
  local tee=$1 kind=$2 img=$3 dir=$4
  mkdir -p "$dir"
  "$vmm" run --firmware "$img" --tee "$tee" --vcpus 1 --memory 64M --sim-state "$sim_state" \
    --vsock-uds "$dir/vsock.sock" --cmdline "attest=$kind" --log-format json \
    >"$dir/serial.txt" 2>"$dir/vmm.log" &
  pids+=($!)
  for _ in $(seq 600); do
    grep -q "listening on vsock port" "$dir/serial.txt" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "secret-release: the guest never offered its evidence:" >&2
  cat "$dir/vmm.log" "$dir/serial.txt" >&2
  exit 1
}

# A copy of the guest image with one byte of its banner text changed: it boots and behaves the
# same, but its launch measurement differs.
modified="$work/test-guest-modified.bin"
cp "$image" "$modified"
offset=$(grep -obUa "test guest" "$image" | head -1 | cut -d: -f1)
printf 'T' | dd of="$modified" bs=1 seek="$offset" conv=notrunc status=none

summary=()
for tee in "${tees[@]}"; do
  case "$tee" in
    sim-snp) kind=snp ;;
    sim-tdx) kind=tdx ;;
    *) echo "secret-release: unknown TEE '$tee' (sim-snp or sim-tdx)" >&2; exit 2 ;;
  esac
  step "$tee: the guest attests to cloister-attestd and receives the secret"
  launch "$tee" "$kind" "$image" "$work/$tee"
  get=(get-resource tenant/disk/passphrase --kbs "$kbs" --kbs-cert "$cert" --tee "$kind"
    --vsock "$work/$tee/vsock.sock")
  show cloister-agent "${get[@]}"
  status=0
  received=$("$agent" "${get[@]}" 2>"$work/$tee/agent.err") || status=$?
  if [[ $status -eq 0 && "$received" == "$secret" ]]; then
    echo "received: $received"
    summary+=("$(printf '  %-8s genuine image   secret released' "$tee")")
  else
    echo "secret-release: $tee did not receive the secret (exit $status):" >&2
    cat "$work/$tee/agent.err" "$work/attestd.log" >&2
    exit 1
  fi

  step "$tee: a guest image with one byte changed asks for the same secret"
  launch "$tee" "$kind" "$modified" "$work/$tee-modified"
  get[-1]="$work/$tee-modified/vsock.sock"
  show cloister-agent "${get[@]}"
  status=0
  "$agent" "${get[@]}" >"$work/$tee-modified/out" 2>"$work/$tee-modified/agent.err" || status=$?
  sed -E 's/^/  /; s/([0-9a-f]{16})[0-9a-f]{80}/\1…/g' "$work/$tee-modified/agent.err"
  if [[ $status -ne 1 || -s "$work/$tee-modified/out" ]]; then
    echo "secret-release: the modified $tee guest was not refused (exit $status)" >&2
    exit 1
  fi
  summary+=("$(printf '  %-8s modified image  refused: %s' "$tee" \
    "$(grep -o 'policy\.[a-z_.]*measurement\|policy\.tdx\.mr_td\|policy\.[a-z_.]*' "$work/$tee-modified/agent.err" | head -1)")")
done

step "The audit log: every release and refusal, hash-chained"
admin "$kbs/admin/v0/audit" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
for line in doc["log"].splitlines():
    r = json.loads(line)
    print("  #%-3d %-10s %-4s %-26s %s" % (r["seq"], r["outcome"], r["tee"], r["resource"] or "-", r["reason"][:90]))
print("  records %d, chain intact: %s" % (doc["records"], doc["intact"]))'
show cloister-attestd audit-verify --state-dir attestd
"$attestd" audit-verify --state-dir "$work/attestd" | grep -E '"(records|intact)"'

step "Secret release: summary (simulated secure processor; no hardware claims)"
printf '%s\n' "${summary[@]}"
