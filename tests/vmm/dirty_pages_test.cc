#include "cloister/vmm/migration/dirty_pages.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tracker_pass.h"

namespace cloister::vmm {
namespace {

constexpr std::uint64_t kPage = 4096;

TEST(DirtyPageTrackerTest, PassesSendWhatChangedSinceThePreviousPass) {
  const RegionSpec specs[] = {{"ram-low", 0, 16 * kPage, false},
                              {"firmware", 0x100000, 4 * kPage, true}};
  auto memory = GuestMemory::create(specs, false);
  ASSERT_TRUE(memory.ok()) << memory.error().message();
  std::uint8_t* ram = memory->regions()[0].host;
  std::uint8_t* firmware = memory->regions()[1].host;
  ram[0] = 1;
  ram[5 * kPage + 7] = 2;
  ram[6 * kPage] = 3;
  firmware[kPage] = 4;
  auto tracker = DirtyPageTracker::create(*memory);
  ASSERT_TRUE(tracker.ok()) << tracker.error().message();

  // First pass: the pages that are not all zeros; offsets follow the memory layout (the firmware
  // region after the 16 pages of RAM).
  EXPECT_EQ(run_pass(*tracker), (Sent{{0, 1}, {5 * kPage, 0}, {6 * kPage, 3}, {17 * kPage, 4}}));
  // Nothing changed.
  EXPECT_TRUE(run_pass(*tracker).empty());
  // A rewrite, a page zeroed again and a page written for the first time.
  ram[5 * kPage + 7] = 9;
  std::memset(ram + 6 * kPage, 0, kPage);
  ram[15 * kPage] = 5;
  EXPECT_EQ(run_pass(*tracker), (Sent{{5 * kPage, 0}, {6 * kPage, 0}, {15 * kPage, 5}}));
  // Writing the same bytes again is no change.
  ram[15 * kPage] = 5;
  EXPECT_TRUE(run_pass(*tracker).empty());
}

}  // namespace
}  // namespace cloister::vmm
