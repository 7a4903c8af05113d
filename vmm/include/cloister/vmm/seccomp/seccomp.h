// Per-thread seccomp filters (Firecracker's model, tightened): every thread class gets an
// allow-list of system calls, and the calls that can widen a thread's reach are checked by
// argument as well:
//   - mmap and mprotect never grant PROT_EXEC, and mremap may only grow or move a mapping
//     (MREMAP_MAYMOVE), not place it (MREMAP_FIXED) or duplicate it (MREMAP_DONTUNMAP): no
//     thread makes new executable memory once its filter is in place;
//   - ioctl is permitted per (descriptor, request) pair, the request compared in all 64 bits,
//     and only for the pairs the hypervisor names (hypervisor.h Ioctl);
//   - socket(2) is permitted per address family.
// A call outside the lists kills the process (SECCOMP_RET_KILL_PROCESS), so a compromised
// device model cannot widen its reach. Every thread installs its filter before any guest code
// runs: start_sandboxed_thread() returns only once the new thread is filtered. Filters are
// classic BPF written here (no libseccomp).
#pragma once

#include <linux/filter.h>

#include <functional>
#include <string_view>
#include <thread>
#include <vector>

#include "cloister/common/result.h"
#include "cloister/vmm/hypervisor/hypervisor.h"

namespace cloister::vmm {

enum class ThreadClass {
  kVcpu,   // a vCPU's run loop and the port I/O and MMIO exits it handles
  kApi,    // the HTTP API server
  kVsock,  // the virtio-vsock device thread: host UNIX sockets
  kBlock,  // a virtio-blk device thread: reads, writes and flushes of its disk file
  kNet,    // a virtio-net device thread: reads and writes of its TAP, TUNSETOFFLOAD on it
  kVmm,    // the main thread once the guest runs: signals, console input, shutdown
  kQuote,  // the TDX GetQuote worker: connections to the quote generation service
  kEmu,    // an emu vCPU's emulation thread: translated guest code and the hand-offs to kVcpu
};

std::string_view thread_class_name(ThreadClass cls);

// What a thread's filter permits for the calls its class checks by argument, where the values
// exist only once the VM does. A class that does not list ioctl or socket never gets them,
// whatever the scope says; a class that lists them gets exactly what the scope names (nothing,
// when it names nothing).
struct SeccompScope {
  // The hypervisor ioctls the thread issues (Vcpu::run_ioctls, Vm::irq_ioctls). At most 32.
  std::vector<Ioctl> ioctls;
  // socket(2) address families (AF_UNIX for the vsock device; the quote service's family).
  // At most 32.
  std::vector<int> socket_families;
};

// False in builds with AddressSanitizer/UBSan: their runtimes make system calls (mmap of
// shadow memory, reading /proc/self/maps, writing reports) no allow-list can predict, so
// sanitizer builds run without filters. docs/operator.md states this.
bool seccomp_available();

// The BPF program for `cls` with `scope`, for inspection and tests; fails when the scope holds
// more than 32 ioctls or families.
Result<std::vector<sock_filter>> seccomp_program(ThreadClass cls, const SeccompScope& scope = {});

// Installs the filter for `cls` on the calling thread only (no TSYNC), after setting
// PR_SET_NO_NEW_PRIVS. Fails with the errno of prctl/seccomp, or as seccomp_program does.
Status install_seccomp(ThreadClass cls, const SeccompScope& scope = {});

// Starts `body` on a new thread that first installs the filter for `cls` with `scope` (when
// `enabled`, and seccomp_available()). Returns once the filter is in place, so a thread started
// this way never runs unfiltered beside the guest. When the filter cannot be installed, `body`
// never runs, the thread has ended and been joined, and the error names the class.
Result<std::thread> start_sandboxed_thread(ThreadClass cls, bool enabled, SeccompScope scope,
                                           std::function<void()> body);

}  // namespace cloister::vmm
