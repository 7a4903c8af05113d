#include "cloister/vmm/migration/dirty_pages.h"

#include <sys/mman.h>

#include <cstring>

#include "cloister/vmm/snapshot/snapshot.h"

namespace cloister::vmm {
namespace {

constexpr std::uint64_t kPage = 4096;

}  // namespace

Result<DirtyPageTracker> DirtyPageTracker::create(const GuestMemory& memory) {
  std::vector<Shadow> shadows;
  auto unmap = [&] {
    for (const Shadow& s : shadows) ::munmap(s.copy, s.region->size);
  };
  std::uint64_t offset = 0;
  for (const GuestRegion& region : memory.regions()) {
    void* copy = ::mmap(nullptr, region.size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (copy == MAP_FAILED) {
      unmap();
      return os_error("migration: shadow of memory region " + region.name);
    }
    shadows.push_back({&region, offset, static_cast<std::uint8_t*>(copy)});
    offset += region.size;
  }
  return DirtyPageTracker(std::move(shadows));
}

DirtyPageTracker::DirtyPageTracker(DirtyPageTracker&& other) noexcept
    : PageTracker(), shadows_(std::move(other.shadows_)) {
  other.shadows_.clear();
}

DirtyPageTracker::~DirtyPageTracker() {
  for (const Shadow& s : shadows_) ::munmap(s.copy, s.region->size);
}

Result<std::uint64_t> DirtyPageTracker::pass(const SendFn& send) {
  std::uint64_t sent = 0;
  for (const Shadow& s : shadows_) {
    const GuestRegion& region = *s.region;
    // A fresh VM's memfd tells which pages were never written; a restored VM's regions are
    // compared whole.
    const auto ranges =
        region.memfd.valid()
            ? data_ranges(region.memfd.get(), region.size)
            : std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, region.size}};
    for (const auto& [begin, end] : ranges) {
      std::uint64_t run = begin;  // the first page of the current run of dirty pages
      for (std::uint64_t p = begin; p <= end; p += kPage) {
        if (p < end && std::memcmp(region.host + p, s.copy + p, kPage) != 0) {
          std::memcpy(s.copy + p, region.host + p, kPage);
          continue;
        }
        if (p > run) {
          CLOISTER_CHECK_OK(send(s.offset + run, s.copy + run, p - run));
          sent += p - run;
        }
        run = p + kPage;
      }
    }
  }
  return sent;
}

}  // namespace cloister::vmm
