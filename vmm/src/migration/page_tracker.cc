#include "cloister/vmm/migration/page_tracker.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cloister/vmm/format.h"
#include "cloister/vmm/migration/dirty_pages.h"
#include "cloister/vmm/snapshot/snapshot.h"

namespace cloister::vmm {
namespace {

constexpr std::uint64_t kPage = 4096;

bool all_zeros(const std::uint8_t* page) {
  return std::all_of(page, page + kPage, [](std::uint8_t b) { return b == 0; });
}

// KVM's log of the guest's writes merged with GuestMemory's log of the VMM's own.
class DirtyLogTracker final : public PageTracker {
 public:
  DirtyLogTracker(Vm& vm, GuestMemory& memory) : vm_(vm), memory_(memory) {}
  // Logging costs the guest a write fault per page per pass, so it stops with the migration;
  // a failure to stop leaves only that cost, and nothing here can report it.
  ~DirtyLogTracker() override {
    memory_.stop_write_log();
    (void)vm_.disable_dirty_log();
  }
  DirtyLogTracker(const DirtyLogTracker&) = delete;
  DirtyLogTracker& operator=(const DirtyLogTracker&) = delete;

  std::string_view name() const override { return kKvmDirtyLogTracker; }

  Result<std::uint64_t> pass(const SendFn& send) override {
    if (first_) {
      first_ = false;
      return send_every_page_with_data(send);
    }
    return send_logged_pages(send);
  }

 private:
  // Logging is on before this reads anything, so a page written while it runs is in the logs.
  Result<std::uint64_t> send_every_page_with_data(const SendFn& send) {
    std::uint64_t sent = 0, offset = 0;
    for (const GuestRegion& region : memory_.regions()) {
      const auto ranges =
          region.memfd.valid()
              ? data_ranges(region.memfd.get(), region.size)
              : std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, region.size}};
      for (const auto& [begin, end] : ranges) {
        std::uint64_t run = begin;  // the first page of the current run of pages with data
        for (std::uint64_t p = begin; p <= end; p += kPage) {
          if (p < end && !all_zeros(region.host + p)) continue;
          if (p > run) {
            CLOISTER_CHECK_OK(send(offset + run, region.host + run, p - run));
            sent += p - run;
          }
          run = p + kPage;
        }
      }
      offset += region.size;
    }
    return sent;
  }

  // Fetching clears both logs before the pages are read: a write racing the read is logged
  // again and goes in the next pass.
  Result<std::uint64_t> send_logged_pages(const SendFn& send) {
    CLOISTER_TRY(std::vector<SlotDirtyLog> slots, vm_.fetch_dirty_log());
    std::vector<std::vector<std::uint64_t>> bitmaps = memory_.take_write_log();
    const std::vector<GuestRegion>& regions = memory_.regions();
    for (const SlotDirtyLog& slot : slots) {
      const auto region = std::find_if(regions.begin(), regions.end(), [&](const GuestRegion& r) {
        return r.guest_phys_addr == slot.guest_phys_addr && r.size / kPage == slot.pages;
      });
      if (region == regions.end())
        return Error(ErrorCode::kInternal,
                     "migration: dirty log of slot " + std::to_string(slot.slot) + " (GPA " +
                         hex(slot.guest_phys_addr) + ", " + std::to_string(slot.pages) +
                         " pages): expected a memory region at that "
                         "address and size, found none");
      CLOISTER_CHECK_OK(merge_dirty_bitmap(
          bitmaps[static_cast<std::size_t>(region - regions.begin())], slot.bitmap));
    }
    std::uint64_t sent = 0, offset = 0;
    for (std::size_t i = 0; i < regions.size(); ++i) {
      CLOISTER_TRY(std::vector<PageRun> runs, dirty_page_runs(bitmaps[i], regions[i].size / kPage));
      for (const PageRun& run : runs) {
        CLOISTER_CHECK_OK(send(offset + run.first_page * kPage,
                               regions[i].host + run.first_page * kPage, run.pages * kPage));
        sent += run.pages * kPage;
      }
      offset += regions[i].size;
    }
    return sent;
  }

  Vm& vm_;
  GuestMemory& memory_;
  bool first_ = true;
};

}  // namespace

Result<std::unique_ptr<PageTracker>> make_page_tracker(Vm& vm, GuestMemory& memory) {
  if (vm.supports_dirty_log()) {
    memory.start_write_log();
    if (auto st = vm.enable_dirty_log(); !st) {
      memory.stop_write_log();
      return st.error().with_context("migration: KVM dirty-page logging");
    }
    return std::unique_ptr<PageTracker>(new DirtyLogTracker(vm, memory));
  }
  CLOISTER_TRY(DirtyPageTracker tracker, DirtyPageTracker::create(memory));
  return std::unique_ptr<PageTracker>(new DirtyPageTracker(std::move(tracker)));
}

}  // namespace cloister::vmm
