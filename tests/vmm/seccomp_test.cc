#include "cloister/vmm/seccomp/seccomp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "cloister/vmm/hypervisor/kvm_abi.h"

namespace cloister::vmm {
namespace {

// Runs `body` in a forked child after installing the filter for `cls`; returns the wait status.
template <typename F>
int in_filtered_child(ThreadClass cls, F body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!install_seccomp(cls)) _exit(100);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(SeccompTest, ProgramsEndInKillAndCheckTheArchitecture) {
  for (auto cls : {ThreadClass::kVcpu, ThreadClass::kApi, ThreadClass::kDevice, ThreadClass::kVmm,
                   ThreadClass::kQuote, ThreadClass::kEmu}) {
    auto p = seccomp_program(cls);
    ASSERT_GT(p.size(), 10u);
    EXPECT_EQ(p.back().code, BPF_RET | BPF_K);
    EXPECT_EQ(p.back().k, 0x80000000u);  // SECCOMP_RET_KILL_PROCESS
    EXPECT_EQ(p[1].k, 0xc000003eu);      // AUDIT_ARCH_X86_64
  }
}

TEST(SeccompTest, AllowedCallsWorkAndForbiddenOnesKill) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  // write(2) is allowed for every class.
  int st = in_filtered_child(ThreadClass::kVcpu, [] { return ::write(2, "", 0) == 0 ? 7 : 8; });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  // A vCPU thread never creates sockets.
  st = in_filtered_child(ThreadClass::kVcpu,
                         [] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 7 : 8; });
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSYS);
  // The API thread may accept but not issue ioctls.
  st = in_filtered_child(ThreadClass::kApi,
                         [] { return ::ioctl(0, 0x5401 /* TCGETS */, nullptr) ? 7 : 8; });
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSYS);
  // vCPU threads may issue KVM_RUN (here on a bad fd: EBADF, but the filter lets it through)...
  st = in_filtered_child(ThreadClass::kVcpu,
                         [] { return ::ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 7 : 8; });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  // ...but no other ioctl (here TCGETS).
  st = in_filtered_child(ThreadClass::kVcpu, [] { return ::ioctl(0, 0x5401, nullptr) ? 7 : 8; });
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSYS);
  // Device threads may open sockets (virtio-vsock), vCPU threads may not (above).
  st = in_filtered_child(ThreadClass::kDevice,
                         [] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 7 : 8; });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  // A confidential guest's conversions run on the vCPU thread: memory attributes and a hole in
  // guest_memfd (here on bad fds).
  st = in_filtered_child(ThreadClass::kVcpu, [] {
    return ::ioctl(-1, kvm_abi::kSetMemoryAttributes, nullptr) < 0 && errno == EBADF &&
                   ::fallocate(-1, 0, 0, 4096) < 0 && errno == EBADF
               ? 7
               : 8;
  });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  // The quote worker connects to the QGS but issues no ioctls and opens no files.
  st = in_filtered_child(ThreadClass::kQuote,
                         [] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 7 : 8; });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  st = in_filtered_child(ThreadClass::kQuote,
                         [] { return ::open("/etc/hosts", O_RDONLY) >= 0 ? 7 : 8; });
  // An emulation thread allocates (mmap) but issues no ioctl, not even KVM_RUN.
  st = in_filtered_child(ThreadClass::kEmu, [] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p != MAP_FAILED ? 7 : 8;
  });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  st = in_filtered_child(ThreadClass::kEmu, [] { return ::ioctl(-1, KVM_RUN, 0) ? 7 : 8; });
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSYS);
  // No class may execve.
  st = in_filtered_child(ThreadClass::kVmm, [] {
    char* argv[] = {nullptr};
    return ::execve("/bin/true", argv, argv) == 0 ? 7 : 8;
  });
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSYS);
}

}  // namespace
}  // namespace cloister::vmm
