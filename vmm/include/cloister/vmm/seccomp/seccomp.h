// Per-thread seccomp filters (Firecracker's model): every thread class gets an allow-list of
// system calls, and ioctl is further limited to the request numbers that class issues. A call
// outside the list kills the process (SECCOMP_RET_KILL_PROCESS), so a compromised device model
// cannot widen its reach. Filters are classic BPF written here (no libseccomp).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include "cloister/common/result.h"

namespace cloister::vmm {

enum class ThreadClass {
  kVcpu,    // KVM_RUN loop and the device emulation it performs
  kApi,     // the HTTP API server
  kDevice,  // device threads with host-side event sources (virtio-vsock sockets)
  kVmm,     // the main thread: signals, console input, shutdown
  kQuote,   // the TDX GetQuote worker: connections to the quote generation service
  kEmu,     // an emu vCPU's emulation thread: translated guest code and the hand-offs to kVcpu
};

// False in builds with AddressSanitizer/UBSan: their runtimes make system calls (mmap of
// shadow memory, reading /proc/self/maps, writing reports) no allow-list can predict, so
// sanitizer builds run without filters. docs/operator.md states this.
bool seccomp_available();

// The BPF program for `cls`, for inspection and tests.
std::vector<sock_filter> seccomp_program(ThreadClass cls);

// Installs the filter for `cls` on the calling thread only (no TSYNC), after setting
// PR_SET_NO_NEW_PRIVS. Fails with the errno of prctl/seccomp.
Status install_seccomp(ThreadClass cls);

}  // namespace cloister::vmm
