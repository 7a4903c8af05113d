#!/usr/bin/env bash
# VMM benchmark: boots the same test guest image (tests/vmm/guest, test-guest.bin: firmware-style,
# real mode -> long mode, UART output, debug-exit) under several programs and compares
#   - time from process start to the guest's first serial byte,
#   - time to the guest's exit,
#   - peak RSS (with KVM also minus the guest memory the guest touched).
# With /dev/kvm: the bare-KVM floor program, cloister-vmm and QEMU microvm, against the targets.
# Always: cloister-vmm on its emulator (--hypervisor emu) and QEMU microvm on TCG, the software
# pair; a speed-class figure without targets.
# usage: bench/vmm/run.sh BUILD_DIR     (make bench BENCH=vmm builds and calls it)
set -euo pipefail
build=$(cd "$1" && pwd)
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=${VMM_BENCH_RUNS:-30}
image="$build/tests/vmm/guest/test-guest.bin"
harness="$build/bench/vmm/vmm-bench-harness"
floor="$build/bench/vmm/vmm-floor"
vmm="$build/vmm/cloister-vmm"
for f in "$image" "$harness" "$floor" "$vmm"; do
  [[ -e "$f" ]] || { echo "bench vmm: $f is missing; build with tests enabled (make bench does)" >&2; exit 2; }
done
kvm=0
if [[ -r /dev/kvm && -w /dev/kvm ]]; then kvm=1; else echo "bench vmm: /dev/kvm is not available: KVM rows skipped" >&2; fi
"$root/scripts/install-deps.sh" bench
qemu=$(command -v qemu-system-x86_64 || true)
[[ -n "$qemu" ]] || { echo "bench vmm: qemu-system-x86_64 missing (scripts/deps/bench.txt)" >&2; exit 2; }

expect="test guest: done, status 0"
qemu_args=(-M microvm -m 64M -nodefaults -no-user-config -display none -serial stdio
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 -bios "$image")
rows=()
guest_kib=0
if [[ $kvm -eq 1 ]]; then
  guest_kib=$("$floor" "$image" 64 2>&1 >/dev/null | sed -n 's/^guest-resident-kib=//p')
  rows+=(floor "$floor" "$image" 64 ::
    cloister-vmm "$vmm" run --firmware "$image" --memory 64M ::
    qemu-microvm "$qemu" -enable-kvm "${qemu_args[@]}" ::)
fi
rows+=(cloister-vmm-emu "$vmm" run --hypervisor emu --firmware "$image" --memory 64M ::
  qemu-tcg "$qemu" -accel tcg "${qemu_args[@]}")

results=$(mktemp)
trap 'rm -f "$results"' EXIT
"$harness" "$runs" "$expect" "${rows[@]}" >"$results"

python3 - "$results" "$guest_kib" "$runs" "$($qemu --version | head -n1)" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, *fields = line.split()
    rows[label] = {k: float(v) for k, v in (f.split("=") for f in fields)}
guest_kib = float(sys.argv[2])
kvm = "floor" in rows
print(f"test guest image: firmware-style, 1 vCPU, 64 MiB; {int(sys.argv[3])} rounds (one run of each program per round) after one warm-up each; medians [min-max]")
if kvm:
    print(f"guest-touched memory (measured by the floor with mincore): {guest_kib:.0f} KiB; QEMU: {sys.argv[4]}")
else:
    print(f"no KVM on this host: emulation rows only; QEMU: {sys.argv[4]}")
print(f"{'program':<17} {'first byte ms':>22} {'guest exit ms':>22} {'peak RSS MiB':>13} {'RSS - guest MiB':>16}")
for label in ("floor", "cloister-vmm", "qemu-microvm", "cloister-vmm-emu", "qemu-tcg"):
    if label not in rows:
        continue
    r = rows[label]
    overhead = f"{(r['max_rss_kib']-guest_kib)/1024:>16.2f}" if kvm else f"{'-':>16}"
    print(f"{label:<17} {r['first_byte_ms']:>8.2f} [{r['first_byte_min']:.2f}-{r['first_byte_max']:.2f}]"
          f"{'':>2} {r['exit_ms']:>8.2f} [{r['exit_min']:.2f}-{r['exit_max']:.2f}]"
          f" {r['max_rss_kib']/1024:>13.2f} {overhead}")
def verdict(ok): return "met" if ok else "MISSED"
if kvm:
    c, f, q = rows["cloister-vmm"], rows["floor"], rows["qemu-microvm"]
    ratio_floor = c["first_byte_ms"] / f["first_byte_ms"]
    ratio_qemu = q["first_byte_ms"] / c["first_byte_ms"]
    overhead = (c["max_rss_kib"] - guest_kib) / 1024
    ratio_floor_min = c["first_byte_min"] / f["first_byte_min"]
    ratio_qemu_min = q["first_byte_min"] / c["first_byte_min"]
    print(f"cloister-vmm / floor, first byte: {ratio_floor:.2f}x median, {ratio_floor_min:.2f}x best run (target <= 1.5x: {verdict(ratio_floor <= 1.5)})")
    print(f"qemu microvm / cloister-vmm, first byte: {ratio_qemu:.2f}x median, {ratio_qemu_min:.2f}x best run (target >= 4x: {verdict(ratio_qemu >= 4)})")
    print(f"cloister-vmm memory overhead: {overhead:.2f} MiB (target <= 5 MiB: {verdict(overhead <= 5)})")
e, t = rows["cloister-vmm-emu"], rows["qemu-tcg"]
print(f"qemu tcg / cloister-vmm emu: first byte {t['first_byte_ms'] / e['first_byte_ms']:.2f}x, guest exit {t['exit_ms'] / e['exit_ms']:.2f}x (medians; no target)")
PY
