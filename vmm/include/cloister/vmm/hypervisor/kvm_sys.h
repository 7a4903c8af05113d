// The system calls the KVM implementation makes, behind one small interface: the real one
// forwards to the kernel; a test double records every call with its payload and answers as a
// host with SEV-SNP or TDX would (tests/vmm/kvm_recorder.h), so the launch sequences can be
// checked on hosts without the hardware.
//
// Every method returns what the system call returns and leaves errno as the kernel set it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloister::vmm {

class KvmSys {
 public:
  virtual ~KvmSys() = default;
  // open(path, O_RDWR | O_CLOEXEC): /dev/kvm, /dev/sev.
  virtual int open(const char* path) = 0;
  // ioctl(fd, request, arg), retried on EINTR except for KVM_RUN.
  virtual int ioctl(int fd, unsigned long request, void* arg) = 0;
  // mmap of a vCPU's kvm_run area (shared, read/write) and its munmap.
  virtual void* map_run(int vcpu_fd, std::size_t size) = 0;
  virtual void unmap_run(void* run, std::size_t size) = 0;
  // fallocate(PUNCH_HOLE | KEEP_SIZE): drops a guest_memfd range after it became shared.
  virtual int punch_hole(int fd, std::uint64_t offset, std::uint64_t size) = 0;
  // madvise(MADV_REMOVE): drops shared backing (memfd) after the range became private.
  virtual int discard(void* address, std::size_t size) = 0;
};

// The kernel.
KvmSys& host_kvm_sys();

}  // namespace cloister::vmm
