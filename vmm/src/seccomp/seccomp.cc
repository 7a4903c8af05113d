#include "cloister/vmm/seccomp/seccomp.h"

#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

#include "cloister/vmm/fd.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"

namespace cloister::vmm {
namespace {

// System calls every thread makes through glibc and libstdc++: memory allocation, locks,
// signals, time, thread exit, logging.
constexpr int kCommon[] = {
    SYS_read,
    SYS_write,
    SYS_writev,
    SYS_close,
    SYS_futex,
    SYS_mmap,
    SYS_munmap,
    SYS_mprotect,
    SYS_madvise,
    SYS_brk,
    SYS_mremap,
    SYS_rt_sigreturn,
    SYS_rt_sigprocmask,
    SYS_sigaltstack,
    SYS_restart_syscall,
    SYS_clock_gettime,
    SYS_clock_nanosleep,
    SYS_nanosleep,
    SYS_gettimeofday,
    SYS_getpid,
    SYS_gettid,
    SYS_tgkill,
    SYS_sched_yield,
    SYS_exit,
    SYS_exit_group,
    SYS_rseq,
    SYS_set_robust_list,
    SYS_getrusage,
    SYS_newfstatat,
    SYS_fstat,
    SYS_lseek,
    SYS_getrandom,
    SYS_sendto,
    SYS_poll,
    SYS_ppoll,
};

// The vCPU loop and the devices it runs: KVM_RUN, interrupts, register dumps on faults,
// virtio-blk file I/O, and a confidential guest's private/shared conversions (memory
// attributes, then discarding the stale copy: madvise or a guest_memfd hole).
constexpr int kVcpu[] = {SYS_ioctl, SYS_pread64, SYS_pwrite64, SYS_fdatasync, SYS_fallocate};
constexpr unsigned long kVcpuIoctls[] = {KVM_RUN, KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS,
                                         kvm_abi::kSetMemoryAttributes};

// The API server (common/http_server.h): one epoll loop that accepts connections, reads
// requests, writes responses and half-closes finished connections.
constexpr int kApi[] = {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_ctl,
                        SYS_accept4,    SYS_recvfrom,    SYS_shutdown};

// Device threads: epoll over host sockets, connecting to the host sockets guests ask for,
// moving bytes, and interrupting the guest.
constexpr int kDevice[] = {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_ctl, SYS_socket, SYS_connect,
                           SYS_accept4,    SYS_recvfrom,    SYS_shutdown,  SYS_ioctl};
constexpr unsigned long kDeviceIoctls[] = {KVM_IRQ_LINE};

// The TDX quote worker: one connection to the quote generation service per quote (its address
// was resolved before the filter).
constexpr int kQuote[] = {SYS_socket, SYS_connect, SYS_getsockopt, SYS_recvfrom};

// The main thread: signalfd/console input, shutdown and cleanup.
constexpr int kVmm[] = {SYS_unlink, SYS_shutdown, SYS_recvfrom};

// emu's emulation threads need nothing beyond kCommon: Unicorn sets up its translation buffer
// when create_vcpu() opens the engine on the main thread, before any filter; afterwards the
// threads allocate (mmap, brk, madvise through malloc), hand exits to the vCPU threads (futex)
// and exit. No ioctl, and no file or socket beyond the write/sendto kCommon has for logging.

sock_filter stmt(std::uint16_t code, std::uint32_t k) {
  return BPF_STMT(code, k);
}
sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
  return BPF_JUMP(code, k, jt, jf);
}

}  // namespace

bool seccomp_available() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

std::vector<sock_filter> seccomp_program(ThreadClass cls) {
  std::vector<int> allowed(std::begin(kCommon), std::end(kCommon));
  std::vector<unsigned long> ioctls;
  switch (cls) {
    case ThreadClass::kVcpu:
      allowed.insert(allowed.end(), std::begin(kVcpu), std::end(kVcpu));
      ioctls.assign(std::begin(kVcpuIoctls), std::end(kVcpuIoctls));
      break;
    case ThreadClass::kApi:
      allowed.insert(allowed.end(), std::begin(kApi), std::end(kApi));
      break;
    case ThreadClass::kDevice:
      allowed.insert(allowed.end(), std::begin(kDevice), std::end(kDevice));
      ioctls.assign(std::begin(kDeviceIoctls), std::end(kDeviceIoctls));
      break;
    case ThreadClass::kVmm:
      allowed.insert(allowed.end(), std::begin(kVmm), std::end(kVmm));
      break;
    case ThreadClass::kQuote:
      allowed.insert(allowed.end(), std::begin(kQuote), std::end(kQuote));
      break;
    case ThreadClass::kEmu:
      break;
  }
  constexpr std::uint32_t kNr = offsetof(seccomp_data, nr);
  constexpr std::uint32_t kArch = offsetof(seccomp_data, arch);
  constexpr std::uint32_t kArg1Low = offsetof(seccomp_data, args) + 8;  // args[1], low half (LE)
  constexpr std::uint32_t kKill = SECCOMP_RET_KILL_PROCESS;
  constexpr std::uint32_t kAllow = SECCOMP_RET_ALLOW;

  std::vector<sock_filter> p;
  p.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, kArch));
  p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  p.push_back(stmt(BPF_RET | BPF_K, kKill));
  p.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, kNr));
  p.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));  // x32 ABI numbers
  p.push_back(stmt(BPF_RET | BPF_K, kKill));
  if (!ioctls.empty()) {
    // if (nr == ioctl) { A = args[1]; allow if it is listed; else kill }
    p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0,
                     static_cast<std::uint8_t>(ioctls.size() + 3)));
    p.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, kArg1Low));
    for (std::size_t i = 0; i < ioctls.size(); ++i)
      p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(ioctls[i]),
                       static_cast<std::uint8_t>(ioctls.size() - i), 0));
    p.push_back(stmt(BPF_RET | BPF_K, kKill));
    p.push_back(stmt(BPF_RET | BPF_K, kAllow));
  }
  for (int nr : allowed) {
    if (nr == SYS_ioctl) continue;  // handled above, with its arguments
    p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(nr), 0, 1));
    p.push_back(stmt(BPF_RET | BPF_K, kAllow));
  }
  p.push_back(stmt(BPF_RET | BPF_K, kKill));
  return p;
}

Status install_seccomp(ThreadClass cls) {
  auto program = seccomp_program(cls);
  sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return os_error("prctl(PR_SET_NO_NEW_PRIVS)");
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
    return os_error("seccomp(SECCOMP_SET_MODE_FILTER)");
  return {};
}

}  // namespace cloister::vmm
