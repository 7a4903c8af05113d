// Dirty-page tracking for live migration's pre-copy, by content: a shadow copy of every page
// already sent, compared with guest memory at each pass. Independent of the hypervisor, so it
// serves emu (whose engine has no dirty log) and any guest memory the VMM itself writes; exact,
// because a page counts as dirty exactly when its bytes differ from what the destination holds.
//
// Correctness while the guest runs: a pass copies each dirty page into the shadow first and
// sends the shadow's copy, so a guest write that lands during or after the copy makes the page
// differ again and it goes in the next pass; the pass made while the VM is paused is final.
// Cost: one memcmp per page that may hold data (the memfd's data ranges: never-written pages
// are skipped without being touched) per pass, and the shadow holds a copy of every sent page.
#pragma once

#include <cstdint>
#include <vector>

#include "cloister/common/result.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "cloister/vmm/migration/page_tracker.h"

namespace cloister::vmm {

class DirtyPageTracker final : public PageTracker {
 public:
  // Shadows `memory`'s regions (one anonymous MAP_NORESERVE mapping each, filled as pages are
  // sent). `memory` must outlive the tracker.
  static Result<DirtyPageTracker> create(const GuestMemory& memory);
  DirtyPageTracker(DirtyPageTracker&&) noexcept;
  DirtyPageTracker& operator=(DirtyPageTracker&&) = delete;
  DirtyPageTracker(const DirtyPageTracker&) = delete;
  DirtyPageTracker& operator=(const DirtyPageTracker&) = delete;
  ~DirtyPageTracker() override;

  std::string_view name() const override { return kContentTracker; }
  // One pass: every page that differs from its shadow copy (the first pass: every page that is
  // not all zeros) is copied into the shadow and handed to `send`, in runs, from the shadow.
  // Returns the bytes sent.
  Result<std::uint64_t> pass(const SendFn& send) override;

 private:
  struct Shadow {
    const GuestRegion* region;
    std::uint64_t offset;  // in the memory layout
    std::uint8_t* copy;
  };
  explicit DirtyPageTracker(std::vector<Shadow> shadows) : shadows_(std::move(shadows)) {}

  std::vector<Shadow> shadows_;
};

}  // namespace cloister::vmm
