// How live migration's pre-copy finds the pages to send (docs/operator.md, "Live migration"):
// one interface, two ways.
//   - "kvm-dirty-log": KVM logs the guest's writes per memory slot (Vm::enable_dirty_log) and the
//     VMM's own writes are logged by GuestMemory (its host-write log); a pass reads both bitmaps
//     and sends the pages they name, straight from guest memory. Cost per pass: one bitmap per
//     slot, independent of how much memory the guest touched.
//   - "content": a shadow copy of every page sent, compared at each pass (dirty_pages.h), for
//     hypervisors without a dirty log (emu).
// make_page_tracker() picks the first when the VM supports it.
//
// Correctness while the guest runs: a page written during a pass, before or after the pass read
// it, is sent again by a later pass; the pass made while the VM is paused (and no device
// writes) leaves the destination holding exactly the source's memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "cloister/common/result.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {

inline constexpr std::string_view kKvmDirtyLogTracker = "kvm-dirty-log";
inline constexpr std::string_view kContentTracker = "content";

class PageTracker {
 public:
  virtual ~PageTracker() = default;

  // kKvmDirtyLogTracker or kContentTracker, for logs and the benchmark.
  virtual std::string_view name() const = 0;

  // Receives runs of pages: `size` bytes (whole pages) at `offset` of the memory layout
  // (snapshot.h, memory_layout()).
  using SendFn =
      std::function<Status(std::uint64_t offset, const std::uint8_t* pages, std::uint64_t size)>;
  // One pass: the first hands `send` every page that is not all zeros; each later pass the
  // pages written since the previous pass read them. Returns the bytes sent.
  virtual Result<std::uint64_t> pass(const SendFn& send) = 0;
};

// The KVM dirty-log tracker when `vm` supports_dirty_log() (logging starts here, on every
// writable slot and in `memory`'s host-write log, and stops when the tracker is destroyed), the
// content tracker otherwise. `vm` and `memory` must outlive the tracker.
Result<std::unique_ptr<PageTracker>> make_page_tracker(Vm& vm, GuestMemory& memory);

}  // namespace cloister::vmm
