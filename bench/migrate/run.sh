#!/usr/bin/env bash
# Live-migration benchmark: the test guest rewriting a 1 MiB buffer (tests/vmm/guest,
# mode=memwrite) in a 256 MiB VM, moved between two cloister-vmm processes over a UNIX socket,
# or TCP on 127.0.0.1 with MIGRATE_BENCH_TRANSPORT=tcp (PUT vm.migrate to a `cloister-vmm
# receive`). Per round: the total time of the API call, and the source's own account from its
# vm.migrated log line: the page tracker it used (kvm-dirty-log or content), total, downtime
# (from the pause for stop-and-copy to the destination's acceptance; the destination starts the
# guest right after), pre-copy passes and bytes sent. Target: downtime < 50 ms on loopback.
# Every round also checks that the guest's checksum passes go on, intact, on the destination.
# usage: [MIGRATE_BENCH_TRANSPORT=unix|tcp] bench/migrate/run.sh BUILD_DIR
#        (scripts/bench.sh BUILD_DIR migrate)
set -euo pipefail
build=$(cd "$1" && pwd)
runs=${MIGRATE_BENCH_RUNS:-5}
transport=${MIGRATE_BENCH_TRANSPORT:-unix}
[[ "$transport" == unix || "$transport" == tcp ]] ||
  { echo "bench migrate: MIGRATE_BENCH_TRANSPORT: expected unix or tcp, found $transport" >&2; exit 2; }
image="$build/tests/vmm/guest/test-guest.bin"
vmm="$build/vmm/cloister-vmm"
for f in "$image" "$vmm"; do
  [[ -e "$f" ]] || { echo "bench migrate: $f is missing; build cloister-vmm and test_guest" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$vmm" "$image" "$runs" "$work" "$transport" <<'PY'
import atexit, json, os, re, socket, statistics, subprocess, sys, time

vmm, image, runs, work, transport = (sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4],
                                     sys.argv[5])
# Every VMM a round started, killed on the way out when a failed check left it running.
children = []
atexit.register(lambda: [c.kill() for c in children if c.poll() is None])
hypervisor = [] if os.access("/dev/kvm", os.R_OK | os.W_OK) else ["--hypervisor", "emu"]

def put(sock, path, body):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    data = json.dumps(body)
    s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(data)}\r\n\r\n{data}".encode())
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    return int(reply[9:12]), reply.split(b"\r\n\r\n", 1)[1].decode()

def wait_for(predicate, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False

def checksums(path):
    try:
        text = open(path).read()
    except FileNotFoundError:
        return []
    if "checksum bad" in text:
        raise SystemExit(f"bench migrate: the guest found a damaged word: {path}")
    return [int(n) for n in re.findall(r"^checksum ok (\d+)\n", text, re.M)]

rows = []
for r in range(runs + 1):
    d = f"{work}/{r}"
    os.makedirs(d)
    src_sock, dst_sock, listen = f"{d}/src.sock", f"{d}/dst.sock", f"{d}/listen.sock"
    src_log, src_console, dst_console = f"{d}/src.log", f"{d}/src.console", f"{d}/dst.console"
    src = subprocess.Popen([vmm, "run", "--firmware", image, "--memory", "256M", "--cmdline",
                            "mode=memwrite memwrite_kib=1024", "--api-socket", src_sock,
                            "--console", "file:" + src_console, "--log-format", "json",
                            "--log-file", src_log] + hypervisor)
    # TCP: port 0, the port the kernel picks is read from the destination's log.
    listen_at = "unix:" + listen if transport == "unix" else "tcp:127.0.0.1:0"
    dst = subprocess.Popen([vmm, "receive", "--listen", listen_at, "--api-socket", dst_sock,
                            "--console", "file:" + dst_console, "--log-format", "json",
                            "--log-file", f"{d}/dst.log"])
    children += [src, dst]
    assert wait_for(lambda: len(checksums(src_console)) >= 2), "the source guest did not start"
    assert wait_for(lambda: os.path.exists(f"{d}/dst.log") and
                    '"vm.receive_listening"' in open(f"{d}/dst.log").read()), "the destination does not listen"
    address = next(json.loads(l) for l in open(f"{d}/dst.log")
                   if '"vm.receive_listening"' in l)["address"]
    began = time.monotonic()
    status, body = put(src_sock, "/api/v1/vm.migrate", {"destination": address})
    call_ms = (time.monotonic() - began) * 1e3
    assert status == 204, body
    assert src.wait(60) == 0
    last = checksums(src_console)[-1]
    assert wait_for(lambda: checksums(dst_console) and checksums(dst_console)[-1] >= last + 2), \
        "the guest did not go on at the destination"
    # One unbroken run of passes across the move, whatever line the pause fell on.
    with open(src_console) as a, open(dst_console) as b:
        text = a.read() + b.read()
    passes = [int(n) for n in re.findall(r"^checksum ok (\d+)\n", text, re.M)]
    assert passes == list(range(1, len(passes) + 1)), "a pass is missing or repeated"
    put(dst_sock, "/api/v1/vm.shutdown", {})
    assert dst.wait(60) == 0
    event = next(json.loads(l) for l in open(src_log) if '"vm.migrated"' in l)
    if r > 0:  # the first round warms the page cache and is not counted
        rows.append({"call_ms": call_ms, "tracker": event["tracker"], **{k: event[k] for k in
                     ("total_ms", "downtime_ms", "precopy_passes", "precopy_bytes",
                      "stop_and_copy_bytes", "bytes_sent")}})

def med(key):
    values = [row[key] for row in rows]
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"

trackers = sorted({row["tracker"] for row in rows})
print(f"test guest rewriting 1 MiB of a 256 MiB VM ({'emu' if hypervisor else 'kvm'}), "
      f"{'UNIX socket' if transport == 'unix' else 'TCP on 127.0.0.1'}; {runs} rounds after one "
      f"warm-up; medians [min-max]")
print(f"page tracker         {', '.join(trackers)}")
print(f"API call ms          {med('call_ms')}")
print(f"migration total ms   {med('total_ms')}")
print(f"downtime ms          {med('downtime_ms')}")
print(f"pre-copy passes      {med('precopy_passes')}")
print(f"pre-copy MiB         {statistics.median(r['precopy_bytes'] for r in rows) / 2**20:.2f}")
print(f"stop-and-copy KiB    {statistics.median(r['stop_and_copy_bytes'] for r in rows) / 2**10:.1f}")
down = statistics.median(r["downtime_ms"] for r in rows)
print(f"downtime target < 50 ms: {'met' if down < 50 else 'MISSED'}")
PY
