#!/usr/bin/env bash
# Snapshot benchmark: the counting test guest (tests/vmm/guest, mode=count) at 64 MiB and 1 GiB;
# per size, the time PUT vm.snapshot takes and the time from starting `cloister-vmm restore` to
# the restored guest's first serial byte, with the ratio of the restore times (target: 1 GiB
# within 2x of 64 MiB, since restore maps guest memory from the file instead of copying it).
# usage: bench/snapshot/run.sh BUILD_DIR     (make bench BENCH=snapshot builds and calls it)
set -euo pipefail
build=$(cd "$1" && pwd)
runs=${SNAPSHOT_BENCH_RUNS:-10}
image="$build/tests/vmm/guest/test-guest.bin"
bench="$build/bench/snapshot/snapshot-bench"
vmm="$build/vmm/cloister-vmm"
for f in "$image" "$bench" "$vmm"; do
  [[ -e "$f" ]] || { echo "bench snapshot: $f is missing; build with tests enabled (make bench does)" >&2; exit 2; }
done
work=$(mktemp -d)
results="$work/results"
trap 'rm -rf "$work"' EXIT
"$bench" "$vmm" "$image" "$runs" "$work" 64M 1G >"$results"

python3 - "$results" "$runs" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, *fields = line.split()
    rows[label] = {k: float(v) for k, v in (f.split("=") for f in fields)}
print(f"counting test guest, 1 vCPU; {int(sys.argv[2])} rounds per size after one warm-up; medians [min-max]")
print(f"{'guest':<6} {'vm.snapshot ms':>24} {'restore to running ms':>24}")
for label in ("64M", "1G"):
    r = rows[label]
    print(f"{label:<6} {r['snapshot_ms']:>10.2f} [{r['snapshot_min']:.2f}-{r['snapshot_max']:.2f}]"
          f" {r['restore_ms']:>10.2f} [{r['restore_min']:.2f}-{r['restore_max']:.2f}]")
ratio = rows["1G"]["restore_ms"] / rows["64M"]["restore_ms"]
verdict = "met" if ratio <= 2 else "MISSED"
print(f"restore to running, 1 GiB / 64 MiB: {ratio:.2f}x (target <= 2x: {verdict})")
PY
