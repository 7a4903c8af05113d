#include "cloister/vmm/seccomp/seccomp.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <future>
#include <iterator>

namespace cloister::vmm {
namespace {

// System calls every thread makes through glibc and libstdc++: memory allocation, locks,
// signals, time, thread exit, logging. mmap, mprotect and mremap are checked by argument below.
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

// The vCPU loop and the exits it handles: entering the guest, interrupts, register dumps on
// faults (the ioctls its scope names), and a confidential guest's private/shared conversions
// (memory attributes, then discarding the stale copy: madvise or a guest_memfd hole).
constexpr int kVcpu[] = {SYS_ioctl, SYS_fallocate};

// The API server (common/http_server.h): one epoll loop that accepts connections, reads
// requests, writes responses and half-closes finished connections; and vm.snapshot, which
// writes the snapshot from this thread (snapshot/snapshot.h): the directory, each file under a
// temporary name (openat, pwrite64, ftruncate to the memory's size, fdatasync), renamed into
// place, the temporary unlinked on failure. Reading guest memory costs no system call. And
// vm.migrate, which streams the VM from this thread (migration/transport.h): a socket of the
// families its scope names (AF_UNIX, AF_INET, AF_INET6), TCP_NODELAY on it (setsockopt), connect
// and its outcome (getsockopt SO_ERROR), sends (sendto, common) with poll, the destination's
// answer (recvfrom), and on KVM the dirty log's ioctls, the ones its scope names.
constexpr int kApi[] = {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_ctl, SYS_accept4,  SYS_recvfrom,
                        SYS_shutdown,   SYS_mkdir,       SYS_openat,    SYS_pwrite64, SYS_ftruncate,
                        SYS_fdatasync,  SYS_rename,      SYS_unlink,    SYS_socket,   SYS_connect,
                        SYS_getsockopt, SYS_setsockopt,  SYS_ioctl};

// The virtio-vsock device thread: epoll over host sockets, connecting to the host sockets guests
// ask for (the families its scope names: AF_UNIX), moving bytes, and interrupting the guest.
constexpr int kVsock[] = {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_ctl, SYS_socket, SYS_connect,
                          SYS_accept4,    SYS_recvfrom,    SYS_shutdown,  SYS_ioctl};

// A virtio-blk device thread: positioned reads and writes of its disk file, flushes, and
// interrupting the guest.
constexpr int kBlock[] = {SYS_pread64, SYS_pwrite64, SYS_fdatasync, SYS_ioctl};

// A virtio-net device thread: epoll over its TAP and wake-up eventfd, reads and writes of frames
// (read and write are common calls), TUNSETOFFLOAD on its TAP and interrupting the guest, the
// ioctls its scope names.
constexpr int kNet[] = {SYS_epoll_wait, SYS_epoll_pwait, SYS_ioctl};

// The TDX quote worker: one connection to the quote generation service per quote (its address
// was resolved before the filter; the family is the scope's).
constexpr int kQuote[] = {SYS_socket, SYS_connect, SYS_getsockopt, SYS_recvfrom};

// The main thread once the guest runs: signalfd and console input (which raises the UART's
// interrupt), shutdown and cleanup.
constexpr int kVmm[] = {SYS_unlink, SYS_shutdown, SYS_recvfrom, SYS_ioctl};

// emu's emulation threads need nothing beyond kCommon: Unicorn maps its translation buffer
// (read, write and execute) when create_vcpu() opens and probes the engine on the main thread,
// before any filter; afterwards the threads translate into that buffer, allocate (mmap, brk,
// madvise through malloc, never executable), hand exits to the vCPU threads (futex) and exit. No
// ioctl, and no file or socket beyond the write/sendto kCommon has for logging.

constexpr std::size_t kMaxScopeEntries = 32;  // keeps every argument block within BPF's 8-bit jumps

constexpr std::uint32_t kKill = SECCOMP_RET_KILL_PROCESS;
constexpr std::uint32_t kAllow = SECCOMP_RET_ALLOW;

sock_filter stmt(std::uint16_t code, std::uint32_t k) {
  return BPF_STMT(code, k);
}
sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
  return BPF_JUMP(code, k, jt, jf);
}
sock_filter ret(std::uint32_t action) {
  return stmt(BPF_RET | BPF_K, action);
}
// Loads the low or high 32 bits of system call argument `index` (x86-64 is little-endian).
sock_filter load_arg(unsigned index, bool high) {
  return stmt(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(offsetof(seccomp_data, args) +
                                                                   8 * index + (high ? 4 : 0)));
}

using Block = std::vector<sock_filter>;

// mmap(addr, len, prot, ...) and mprotect(addr, len, prot): killed when prot has PROT_EXEC. The
// kernel reads prot's low 32 bits only.
Block no_exec_block() {
  return {load_arg(2, false), jump(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1), ret(kKill),
          ret(kAllow)};
}

// mremap(old, old_len, new_len, flags, new_addr): flags 0 or MREMAP_MAYMOVE, all 64 bits.
Block mremap_block() {
  return {load_arg(3, true),
          jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
          load_arg(3, false),
          jump(BPF_JMP | BPF_JSET | BPF_K, ~static_cast<std::uint32_t>(MREMAP_MAYMOVE), 1, 0),
          ret(kAllow),
          ret(kKill)};
}

// ioctl(fd, request, arg): allowed for the listed (fd, request) pairs. The kernel takes fd as
// an unsigned int, so its low 32 bits are compared; the request is compared in all 64 bits,
// so a listed request with anything in its upper half does not pass.
Block ioctl_block(const std::vector<Ioctl>& ioctls) {
  Block b;
  for (const Ioctl& i : ioctls) {
    const auto request = static_cast<std::uint64_t>(i.request);
    b.push_back(load_arg(0, false));
    b.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(i.fd), 0, 5));
    b.push_back(load_arg(1, false));
    b.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(request), 0, 3));
    b.push_back(load_arg(1, true));
    b.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(request >> 32), 0, 1));
    b.push_back(ret(kAllow));
  }
  b.push_back(ret(kKill));
  return b;
}

// socket(family, type, protocol): allowed for the listed families (an int: its low 32 bits).
Block socket_block(const std::vector<int>& families) {
  Block b{load_arg(0, false)};
  const std::size_t n = families.size();
  for (std::size_t i = 0; i < n; ++i)
    b.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(families[i]),
                     static_cast<std::uint8_t>(n - i), 0));
  b.push_back(ret(kKill));
  b.push_back(ret(kAllow));
  return b;
}

std::vector<int> class_syscalls(ThreadClass cls) {
  std::vector<int> allowed(std::begin(kCommon), std::end(kCommon));
  auto add = [&](const auto& list) {
    allowed.insert(allowed.end(), std::begin(list), std::end(list));
  };
  switch (cls) {
    case ThreadClass::kVcpu:
      add(kVcpu);
      break;
    case ThreadClass::kApi:
      add(kApi);
      break;
    case ThreadClass::kVsock:
      add(kVsock);
      break;
    case ThreadClass::kBlock:
      add(kBlock);
      break;
    case ThreadClass::kNet:
      add(kNet);
      break;
    case ThreadClass::kVmm:
      add(kVmm);
      break;
    case ThreadClass::kQuote:
      add(kQuote);
      break;
    case ThreadClass::kEmu:
      break;
  }
  return allowed;
}

}  // namespace

std::string_view thread_class_name(ThreadClass cls) {
  switch (cls) {
    case ThreadClass::kVcpu:
      return "vcpu";
    case ThreadClass::kApi:
      return "api";
    case ThreadClass::kVsock:
      return "vsock";
    case ThreadClass::kBlock:
      return "block";
    case ThreadClass::kNet:
      return "net";
    case ThreadClass::kVmm:
      return "vmm";
    case ThreadClass::kQuote:
      return "quote";
    case ThreadClass::kEmu:
      return "emu";
  }
  return "unknown";
}

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

Result<std::vector<sock_filter>> seccomp_program(ThreadClass cls, const SeccompScope& scope) {
  if (scope.ioctls.size() > kMaxScopeEntries || scope.socket_families.size() > kMaxScopeEntries)
    return Error("seccomp scope of the " + std::string(thread_class_name(cls)) +
                 " class: " + std::to_string(scope.ioctls.size()) + " ioctls and " +
                 std::to_string(scope.socket_families.size()) +
                 " socket families, expected at most " + std::to_string(kMaxScopeEntries) +
                 " each");
  std::vector<sock_filter> p;
  p.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  p.push_back(ret(kKill));
  p.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  p.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));  // x32 ABI numbers
  p.push_back(ret(kKill));
  // Each allowed call: if (nr == call) { its block, which returns on every path } else skip
  // the block, with nr still in A.
  for (int nr : class_syscalls(cls)) {
    Block block;
    switch (nr) {
      case SYS_mmap:
      case SYS_mprotect:
        block = no_exec_block();
        break;
      case SYS_mremap:
        block = mremap_block();
        break;
      case SYS_ioctl:
        block = ioctl_block(scope.ioctls);
        break;
      case SYS_socket:
        block = socket_block(scope.socket_families);
        break;
      default:
        block = {ret(kAllow)};
        break;
    }
    p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(nr), 0,
                     static_cast<std::uint8_t>(block.size())));
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(ret(kKill));
  return p;
}

Status install_seccomp(ThreadClass cls, const SeccompScope& scope) {
  CLOISTER_TRY(auto program, seccomp_program(cls, scope));
  sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return os_error("prctl(PR_SET_NO_NEW_PRIVS)");
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
    return os_error("seccomp(SECCOMP_SET_MODE_FILTER)");
  return {};
}

Result<std::thread> start_sandboxed_thread(ThreadClass cls, bool enabled, SeccompScope scope,
                                           std::function<void()> body) {
  std::promise<Status> installed;
  std::future<Status> outcome = installed.get_future();
  std::thread thread([cls, enabled, scope = std::move(scope), body = std::move(body),
                      installed = std::move(installed)]() mutable {
    Status st = enabled && seccomp_available() ? install_seccomp(cls, scope) : Status{};
    const bool ok = st.ok();
    installed.set_value(std::move(st));
    if (ok) body();
  });
  Status st = outcome.get();
  if (!st) {
    thread.join();
    return st.error().with_context("seccomp filter of the " + std::string(thread_class_name(cls)) +
                                   " thread");
  }
  return thread;
}

}  // namespace cloister::vmm
