#include "cloister/vmm/seccomp/seccomp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>

#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "cloister/vmm/migration/transport.h"

namespace cloister::vmm {
namespace {

constexpr ThreadClass kClasses[] = {ThreadClass::kVcpu,  ThreadClass::kApi, ThreadClass::kVsock,
                                    ThreadClass::kBlock, ThreadClass::kNet, ThreadClass::kVmm,
                                    ThreadClass::kQuote, ThreadClass::kEmu};

// Runs `body` in a forked child after installing the filter for `cls` with `scope`; returns the
// wait status. 100: the filter could not be installed.
template <typename F>
int in_filtered_child(ThreadClass cls, const SeccompScope& scope, F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!install_seccomp(cls, scope)) _exit(100);
    _exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with " + std::to_string(WEXITSTATUS(status));
}

::testing::AssertionResult KilledBySeccomp(int status) {
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(status) << ", expected SIGSYS";
}

::testing::AssertionResult Allowed(int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 7) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(status) << ", expected the call to pass (7)";
}

// What a thread of `cls` is given on a KVM VM: the vCPU's and the VM's descriptors (here
// /dev/null, `fd`) with the requests those threads issue, AF_UNIX for the vsock device and the
// quote worker (a unix: QGS).
SeccompScope typical_scope(ThreadClass cls, int fd) {
  SeccompScope scope;
  switch (cls) {
    case ThreadClass::kVcpu:
      scope.ioctls = {{fd, KVM_RUN}, {fd, KVM_GET_REGS}, {fd, KVM_GET_SREGS}, {fd, KVM_IRQ_LINE}};
      break;
    case ThreadClass::kVsock:
      scope.ioctls = {{fd, KVM_IRQ_LINE}};
      scope.socket_families = {AF_UNIX};
      break;
    case ThreadClass::kBlock:
    case ThreadClass::kVmm:
      scope.ioctls = {{fd, KVM_IRQ_LINE}};
      break;
    case ThreadClass::kNet:
      scope.ioctls = {{fd, KVM_IRQ_LINE}, {fd, TUNSETOFFLOAD}};
      break;
    case ThreadClass::kQuote:
      scope.socket_families = {AF_UNIX};
      break;
    case ThreadClass::kApi:  // vm.migrate on KVM with manual dirty-log protection
      scope.ioctls = {
          {fd, KVM_SET_USER_MEMORY_REGION}, {fd, KVM_GET_DIRTY_LOG}, {fd, KVM_CLEAR_DIRTY_LOG}};
      scope.socket_families = migration_socket_families();
      break;
    case ThreadClass::kEmu:
      break;
  }
  return scope;
}

class DevNull {
 public:
  DevNull() : fd_(::open("/dev/null", O_RDWR | O_CLOEXEC)) {}
  ~DevNull() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

TEST(SeccompTest, ProgramsEndInKillAndCheckTheArchitecture) {
  for (auto cls : kClasses) {
    auto p = seccomp_program(cls, typical_scope(cls, 5));
    ASSERT_TRUE(p.ok()) << p.error().message();
    ASSERT_GT(p->size(), 10u);
    EXPECT_EQ(p->back().code, BPF_RET | BPF_K);
    EXPECT_EQ(p->back().k, 0x80000000u);  // SECCOMP_RET_KILL_PROCESS
    EXPECT_EQ((*p)[1].k, 0xc000003eu);    // AUDIT_ARCH_X86_64
  }
}

TEST(SeccompTest, ScopesAreBounded) {
  SeccompScope scope;
  scope.ioctls.assign(33, Ioctl{3, KVM_RUN});
  auto p = seccomp_program(ThreadClass::kVcpu, scope);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message(),
            "seccomp scope of the vcpu class: 33 ioctls and 0 socket families, expected at most 32 "
            "each");
}

// The three rules every class shares, whatever its scope: no executable memory, no socket of a
// family the scope does not name (none for most classes), no ioctl but the scope's KVM pairs.
TEST(SeccompTest, EveryClassKillsExecutableMemoryForeignSocketsAndNonKvmIoctls) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  DevNull kvm;
  ASSERT_GE(kvm.fd(), 0);
  for (auto cls : kClasses) {
    SCOPED_TRACE(std::string(thread_class_name(cls)));
    const SeccompScope scope = typical_scope(cls, kvm.fd());
    // Ordinary memory stays available: malloc needs it.
    EXPECT_TRUE(Allowed(in_filtered_child(cls, scope, [] {
      void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      return p != MAP_FAILED && ::mprotect(p, 4096, PROT_READ) == 0 ? 7 : 8;
    })));
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(cls, scope, [] {
      void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      return p != MAP_FAILED ? 7 : 8;
    })));
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(cls, scope, [] {
      void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      return ::mprotect(p, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) == 0 ? 7 : 8;
    })));
    if (cls != ThreadClass::kApi) {  // the API thread migrates over TCP
      EXPECT_TRUE(KilledBySeccomp(in_filtered_child(
          cls, scope, [] { return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 7 : 8; })));
    }
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(
        cls, scope, [] { return ::socket(AF_VSOCK, SOCK_STREAM, 0) >= 0 ? 7 : 8; })));
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(cls, scope, [] {
      termios t{};
      return ::ioctl(0, TCGETS, &t) == 0 ? 7 : 8;
    })));
  }
}

// The ioctls a scope names pass on their descriptor only, with the request compared in all 64
// bits.
TEST(SeccompTest, IoctlsAreTiedToTheirDescriptorAndComparedInFull) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  DevNull vcpu, other;
  ASSERT_GE(vcpu.fd(), 0);
  ASSERT_GE(other.fd(), 0);
  const SeccompScope scope = typical_scope(ThreadClass::kVcpu, vcpu.fd());
  const int fd = vcpu.fd(), wrong = other.fd();
  // /dev/null answers ENOTTY: the filter let the call through.
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kVcpu, scope, [fd] {
    return ::ioctl(fd, KVM_RUN, 0) < 0 && errno == ENOTTY ? 7 : 8;
  })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(
      ThreadClass::kVcpu, scope, [wrong] { return ::ioctl(wrong, KVM_RUN, 0) < 0 ? 7 : 8; })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kVcpu, scope, [fd] {
    const unsigned long request = KVM_RUN | (1ul << 32);  // the kernel would see KVM_RUN
    return ::syscall(SYS_ioctl, fd, request, 0) < 0 ? 7 : 8;
  })));
  // A KVM request the scope does not name, on the right descriptor.
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kVcpu, scope, [fd] {
    return ::ioctl(fd, kvm_abi::kSetMemoryAttributes, nullptr) < 0 ? 7 : 8;
  })));
  // The emulation threads issue no ioctl at all, whatever a scope says.
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(
      ThreadClass::kEmu, scope, [fd] { return ::ioctl(fd, KVM_RUN, 0) < 0 ? 7 : 8; })));
}

// vm.migrate on KVM reads the dirty log from the API thread: exactly the dirty log's requests on
// the VM's descriptor, and no ioctl at all when the VM has no dirty log (emu).
TEST(SeccompTest, ApiThreadIssuesTheDirtyLogIoctlsOnly) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  DevNull vm, other;
  ASSERT_GE(vm.fd(), 0);
  ASSERT_GE(other.fd(), 0);
  const SeccompScope scope = typical_scope(ThreadClass::kApi, vm.fd());
  const int fd = vm.fd(), wrong = other.fd();
  for (unsigned long request : {static_cast<unsigned long>(KVM_SET_USER_MEMORY_REGION),
                                static_cast<unsigned long>(KVM_GET_DIRTY_LOG),
                                static_cast<unsigned long>(KVM_CLEAR_DIRTY_LOG)}) {
    EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kApi, scope, [fd, request] {
      return ::ioctl(fd, request, nullptr) < 0 && errno == ENOTTY ? 7 : 8;
    }))) << request;
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kApi, scope, [wrong, request] {
      return ::ioctl(wrong, request, nullptr) < 0 ? 7 : 8;
    }))) << request;
  }
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(
      ThreadClass::kApi, scope, [fd] { return ::ioctl(fd, KVM_RUN, 0) < 0 ? 7 : 8; })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kApi, SeccompScope{}, [fd] {
    return ::ioctl(fd, KVM_GET_DIRTY_LOG, nullptr) < 0 ? 7 : 8;
  })));
}

TEST(SeccompTest, SocketFamiliesAreTheScopes) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  SeccompScope unix_only;
  unix_only.socket_families = {AF_UNIX};
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kVsock, unix_only, [] {
    return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 7 : 8;
  })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kVsock, unix_only, [] {
    return ::socket(AF_VSOCK, SOCK_STREAM, 0) >= 0 ? 7 : 8;
  })));
  // A quote worker configured for vsock:CID:PORT gets AF_VSOCK and nothing else.
  SeccompScope vsock_only;
  vsock_only.socket_families = {AF_VSOCK};
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kQuote, vsock_only, [] {
    return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 7 : 8;
  })));
  // A class that does not list socket(2) never gets it.
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kBlock, unix_only, [] {
    return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 7 : 8;
  })));
}

TEST(SeccompTest, MremapMayMoveButNotPlace) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kApi, {}, [] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return ::mremap(p, 4096, 1 << 20, MREMAP_MAYMOVE) != MAP_FAILED ? 7 : 8;
  })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kApi, {}, [] {
    void* p = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* target = static_cast<char*>(p) + 4096;
    return ::mremap(p, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, target) != MAP_FAILED ? 7 : 8;
  })));
}

// vm.migrate streams from the API thread: a UNIX or TCP socket connected to the destination,
// nothing else; no other class gets TCP.
TEST(SeccompTest, ApiThreadConnectsMigrationSocketsOnly) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  SeccompScope migration;
  migration.socket_families = migration_socket_families();
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kApi, migration, [] {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/nonexistent/cloister-migration.sock");
    const bool refused =
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 && errno == ENOENT;
    return fd >= 0 && refused ? 7 : 8;
  })));
  // What MigrationSender::connect does for tcp:127.0.0.1:PORT, to a port nobody listens on.
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kApi, migration, [] {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    if (fd < 0 || ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) return 8;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(1);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return 8;
    int err = 0;
    socklen_t len = sizeof err;
    return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? 7 : 8;
  })));
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kApi, migration, [] {
    return ::socket(AF_INET6, SOCK_STREAM, 0) >= 0 ? 7 : 8;
  })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kApi, migration, [] {
    return ::socket(AF_VSOCK, SOCK_STREAM, 0) >= 0 ? 7 : 8;
  })));
  SeccompScope unix_only;
  unix_only.socket_families = {AF_UNIX};
  for (ThreadClass cls : {ThreadClass::kVsock, ThreadClass::kQuote})
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(cls, unix_only, [] {
      return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 7 : 8;
    }))) << thread_class_name(cls);
}

// vm.snapshot writes from the API thread: a directory, a file under a temporary name written,
// sized, synced and renamed. No other class may create files.
TEST(SeccompTest, ApiThreadWritesSnapshotFilesOthersCannotCreateFiles) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("cloister-seccomp-" + std::to_string(::getpid())))
          .string();
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kApi, {}, [dir] {
    if (::mkdir(dir.c_str(), 0700) != 0) return 8;
    const std::string tmp = dir + "/memory.bin.tmp", final_name = dir + "/memory.bin";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return 8;
    const char page[8] = "snap";
    const bool ok = ::pwrite(fd, page, sizeof page, 4096) == 8 && ::ftruncate(fd, 8192) == 0 &&
                    ::fdatasync(fd) == 0 && ::rename(tmp.c_str(), final_name.c_str()) == 0 &&
                    ::unlink(final_name.c_str()) == 0;
    ::close(fd);
    return ok ? 7 : 8;
  })));
  std::filesystem::remove_all(dir);
  for (auto cls : {ThreadClass::kVcpu, ThreadClass::kNet, ThreadClass::kEmu}) {
    SCOPED_TRACE(std::string(thread_class_name(cls)));
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(cls, {}, [dir] {
      return ::open((dir + "-other").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0 ? 7 : 8;
    })));
  }
}

TEST(SeccompTest, ClassesKeepTheirOwnCalls) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  DevNull file;
  ASSERT_GE(file.fd(), 0);
  const int fd = file.fd();
  // The block thread reads and writes its file; the vCPU thread no longer does (virtio-blk runs
  // on its own thread).
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kBlock, {}, [fd] {
    char b[8];
    return ::pread(fd, b, sizeof b, 0) == 0 && ::pwrite(fd, b, sizeof b, 0) == 8 ? 7 : 8;
  })));
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(ThreadClass::kVcpu, {}, [fd] {
    char b[8];
    return ::pread(fd, b, sizeof b, 0) == 0 ? 7 : 8;
  })));
  // A confidential guest's conversions run on the vCPU thread: a hole in guest_memfd (here on
  // a bad descriptor).
  EXPECT_TRUE(Allowed(in_filtered_child(ThreadClass::kVcpu, {}, [] {
    return ::fallocate(-1, 0, 0, 4096) < 0 && errno == EBADF ? 7 : 8;
  })));
  // The quote worker opens no files.
  EXPECT_TRUE(KilledBySeccomp(in_filtered_child(
      ThreadClass::kQuote, {}, [] { return ::open("/etc/hosts", O_RDONLY) >= 0 ? 7 : 8; })));
  // No class may execve.
  for (auto cls : kClasses) {
    SCOPED_TRACE(std::string(thread_class_name(cls)));
    EXPECT_TRUE(KilledBySeccomp(in_filtered_child(cls, {}, [] {
      char* argv[] = {nullptr};
      return ::execve("/bin/true", argv, argv) == 0 ? 7 : 8;
    })));
  }
}

TEST(SeccompTest, SandboxedThreadsRunOnlyOnceFiltered) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  std::atomic<bool> ran = false;
  auto thread =
      start_sandboxed_thread(ThreadClass::kEmu, /*enabled=*/true, {}, [&] { ran = true; });
  ASSERT_TRUE(thread.ok()) << thread.error().message();
  thread->join();
  EXPECT_TRUE(ran);
  SeccompScope too_big;
  too_big.socket_families.assign(33, AF_UNIX);
  ran = false;
  auto refused =
      start_sandboxed_thread(ThreadClass::kVsock, /*enabled=*/true, too_big, [&] { ran = true; });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message().rfind("seccomp filter of the vsock thread: ", 0), 0u)
      << refused.error().message();
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace cloister::vmm
