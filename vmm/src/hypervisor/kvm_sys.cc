#include "cloister/vmm/hypervisor/kvm_sys.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>

namespace cloister::vmm {
namespace {

class HostKvmSys final : public KvmSys {
 public:
  int open(const char* path) override { return ::open(path, O_RDWR | O_CLOEXEC); }

  int ioctl(int fd, unsigned long request, void* arg) override {
    int rc;
    do {
      rc = ::ioctl(fd, request, arg);
    } while (rc < 0 && errno == EINTR && request != KVM_RUN);
    return rc;
  }

  void* map_run(int vcpu_fd, std::size_t size) override {
    return ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
  }

  void unmap_run(void* run, std::size_t size) override { ::munmap(run, size); }

  int punch_hole(int fd, std::uint64_t offset, std::uint64_t size) override {
    return ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                       static_cast<off_t>(size));
  }

  int discard(void* address, std::size_t size) override {
    return ::madvise(address, size, MADV_REMOVE);
  }
};

}  // namespace

KvmSys& host_kvm_sys() {
  static HostKvmSys sys;
  return sys;
}

}  // namespace cloister::vmm
