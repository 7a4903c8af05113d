#!/usr/bin/env bash
# Attested-launch benchmark: in the same run, rounds of
#   - cloister-vmm --tee none: process start to the test guest's exit;
#   - --tee sim-snp and --tee sim-tdx: process start to the tenant's verdict (launch with the
#     measurement folded, the guest asks the simulated secure processor for evidence bound to a
#     fresh nonce, cloister-agent fetches it over vsock, verify-report checks it against the
#     predicted policy and the simulated root);
# and the peak RSS of each VMM process. Target: launch to verdict within 3x of the plain boot's
# time to exit; VMM memory overhead (peak RSS - guest-touched memory, KVM only) under 5 MiB.
# usage: bench/attest/run.sh BUILD_DIR      (make bench BENCH=attest builds and calls it)
set -euo pipefail
build=$(cd "$1" && pwd)
runs=${ATTEST_BENCH_RUNS:-20}
for f in vmm/cloister-vmm measure/cloister-measure sdk/cloister-agent sdk/verify-report \
  tests/vmm/guest/test-guest.bin; do
  [[ -e "$build/$f" ]] || { echo "bench attest: $build/$f is missing; build with tests enabled" >&2; exit 2; }
done
guest_kib=0
if [[ -r /dev/kvm && -w /dev/kvm && -x "$build/bench/vmm/vmm-floor" ]]; then
  guest_kib=$("$build/bench/vmm/vmm-floor" "$build/tests/vmm/guest/test-guest.bin" 64 2>&1 >/dev/null |
    sed -n 's/^guest-resident-kib=//p')
fi
exec python3 - "$build" "$runs" "$guest_kib" <<'PY'
import os, re, secrets, shutil, statistics, subprocess, sys, tempfile, time

build, runs, guest_kib = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
vmm = f"{build}/vmm/cloister-vmm"
measure = f"{build}/measure/cloister-measure"
agent = f"{build}/sdk/cloister-agent"
verify = f"{build}/sdk/verify-report"
image = f"{build}/tests/vmm/guest/test-guest.bin"
work = tempfile.mkdtemp(prefix="cloister-bench-attest-")
state = f"{work}/sim-state"

def fail(message):
    print(f"bench attest: {message}", file=sys.stderr)
    sys.exit(1)

def plain_boot():
    start = time.perf_counter()
    p = subprocess.Popen([vmm, "run", "--firmware", image, "--memory", "64M"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    if status != 0 or "test guest: done, status 0" not in out:
        fail(f"--tee none: exit status {status}")
    return elapsed, usage.ru_maxrss

def predict(tee, policy):
    if tee == "sim-snp":
        args = ["snp", "--ovmf", image, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--vmm-type", "cloister"]
    else:
        args = ["tdx", "--ovmf", image, "--vcpus", "1", "--memory", "64M"]
    start = time.perf_counter()
    subprocess.run([measure, *args, "--policy-out", policy], check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000

def attested(tee, policy, n):
    kind = tee[4:]
    d = f"{work}/{tee}-{n}"
    os.makedirs(d)
    nonce = secrets.token_hex(64)
    log = open(f"{d}/vmm.log", "w")
    start = time.perf_counter()
    p = subprocess.Popen([vmm, "run", "--firmware", image, "--tee", tee, "--vcpus", "1",
                          "--memory", "64M", "--sim-state", state, "--vsock-uds", f"{d}/vsock.sock",
                          "--cmdline", f"attest={kind}", "--log-format", "json"],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    for line in p.stdout:
        if "listening on vsock port" in line:
            break
    else:
        fail(f"{tee}: the guest never offered its evidence ({d}/vmm.log)")
    subprocess.run([agent, "evidence", "--vsock", f"{d}/vsock.sock", "--port", "9000",
                    "--report-data", nonce, "--out", f"{d}/ev"], check=True, stdout=subprocess.DEVNULL)
    if kind == "snp":
        evidence = [f"{d}/ev/report.bin", "--cert-table", f"{d}/ev/cert-table.bin",
                    "--trust-root", f"{state}/amd/Genoa/ark.crt.pem"]
    else:
        collateral = re.search(r'"collateral":"([^"]+)"', open(f"{d}/vmm.log").read()).group(1)
        evidence = [f"{d}/ev/quote.bin", "--collateral", collateral,
                    "--event-log", f"{d}/ev/event-log.bin",
                    "--trust-root", f"{state}/intel/root.crt.pem"]
    v = subprocess.run([verify, *evidence, "--policy", policy, "--report-data", nonce],
                       stdout=subprocess.PIPE, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if v.returncode != 0 or "simulated)" not in v.stdout:
        fail(f"{tee}: verify-report exit {v.returncode}\n{v.stdout}")
    p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        fail(f"{tee}: cloister-vmm exit status {status}")
    return elapsed, usage.ru_maxrss

tees = ("sim-snp", "sim-tdx")
policies = {t: f"{work}/{t}-policy.json" for t in tees}
predict_ms = {t: predict(t, policies[t]) for t in tees}
# Warm-up: creates the simulated hierarchies (RSA-4096 keys, once per state directory) and the
# page cache; not counted.
plain_boot()
for t in tees:
    attested(t, policies[t], "warmup")
rows = {"none": [], "sim-snp": [], "sim-tdx": []}
for n in range(runs):
    rows["none"].append(plain_boot())
    for t in tees:
        rows[t].append(attested(t, policies[t], n))
shutil.rmtree(work)

def median(values): return statistics.median(values)
hv = "KVM" if guest_kib else "the emu hypervisor (no usable /dev/kvm)"
print(f"test-guest.bin, 1 vCPU, 64 MiB, on {hv}; {runs} rounds (one run of each) after a warm-up; medians [min-max]")
print(f"{'launch':<9} {'measured':<34} {'ms':>22} {'peak RSS MiB':>13}")
what = {"none": "process start to guest exit", "sim-snp": "process start to verdict",
        "sim-tdx": "process start to verdict"}
for label, values in rows.items():
    ms = [v[0] for v in values]
    rss = [v[1] / 1024 for v in values]
    print(f"{label:<9} {what[label]:<34} {median(ms):>8.1f} [{min(ms):.1f}-{max(ms):.1f}] {median(rss):>13.2f}")
print(f"prediction (cloister-measure, once per image): sim-snp {predict_ms['sim-snp']:.1f} ms, sim-tdx {predict_ms['sim-tdx']:.1f} ms")
none_ms = median([v[0] for v in rows["none"]])
none_rss = median([v[1] for v in rows["none"]]) / 1024
for t in tees:
    ratio = median([v[0] for v in rows[t]]) / none_ms
    print(f"{t} launch to verdict / --tee none to exit: {ratio:.2f}x (target <= 3x: {'met' if ratio <= 3 else 'MISSED'})")
for t in tees:
    rss = median([v[1] for v in rows[t]]) / 1024
    line = f"{t} VMM peak RSS: {rss - none_rss:+.2f} MiB over --tee none"
    if guest_kib:
        overhead = rss - guest_kib / 1024
        line += f"; overhead over guest-touched memory {overhead:.2f} MiB (target <= 5 MiB: {'met' if overhead <= 5 else 'MISSED'})"
    else:
        line += " (the absolute overhead target needs KVM: on emu the emulator's code cache dominates RSS)"
    print(line)
PY
