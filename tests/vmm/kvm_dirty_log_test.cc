// The KVM dirty log against a real /dev/kvm: a real-mode guest writes three pages around an I/O
// exit, and each fetch names exactly the pages written since the previous one. The development
// host has no KVM, so there this test skips and says why; the ioctl sequence itself is checked
// everywhere over the recording ioctl layer (dirty_log_test.cc).
#include <gtest/gtest.h>

#include "cloister/vmm/hypervisor/kvm.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "cloister/vmm/migration/page_tracker.h"
#include "real_mode_vcpu.h"

namespace cloister::vmm {
namespace {

// The pages set in a fetch's single slot.
std::vector<std::uint64_t> dirty_pages(const Result<std::vector<SlotDirtyLog>>& logs) {
  EXPECT_TRUE(logs.ok()) << logs.error().message();
  std::vector<std::uint64_t> pages;
  if (!logs.ok() || logs->size() != 1) return pages;
  auto runs = dirty_page_runs((*logs)[0].bitmap, (*logs)[0].pages);
  EXPECT_TRUE(runs.ok());
  for (const PageRun& run : *runs)
    for (std::uint64_t p = run.first_page; p < run.first_page + run.pages; ++p) pages.push_back(p);
  return pages;
}

TEST(KvmDirtyLogHostTest, EachFetchNamesThePagesTheGuestWroteSinceThePrevious) {
  auto hv = open_kvm();
  if (!hv)
    GTEST_SKIP() << "needs a KVM host (KVM unavailable: " << hv.error().message()
                 << "); the dirty-log ioctls are checked without KVM by KvmDirtyLogTest.*";
  auto vm = (*hv)->create_vm({});
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  ASSERT_TRUE((*vm)->supports_dirty_log());
  RegionSpec spec{"ram", 0, 1 << 20, false};
  auto mem = GuestMemory::create(std::span(&spec, 1), false);
  ASSERT_TRUE(mem.ok());
  const auto& region = mem->regions()[0];
  ASSERT_TRUE((*vm)->map_memory({0, 0, region.size, region.host, false, nullptr, 0}).ok());
  // mov byte [0x3000], 0x11; mov byte [0x5000], 0x22; out 0x42, al; mov byte [0x7000], 0x33;
  // hlt (real mode, DS base 0)
  const std::uint8_t code[] = {0xc6, 0x06, 0x00, 0x30, 0x11, 0xc6, 0x06, 0x00, 0x50,
                               0x22, 0xe6, 0x42, 0xc6, 0x06, 0x00, 0x70, 0x33, 0xf4};
  ASSERT_TRUE(mem->write(0x1000, code, "code").ok());
  auto vcpu = real_mode_vcpu(**vm, 0x1000);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();

  ASSERT_TRUE((*vm)->enable_dirty_log().ok());
  EXPECT_TRUE(dirty_pages((*vm)->fetch_dirty_log()).empty());
  auto exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  ASSERT_EQ(exit->reason, ExitReason::kIo);
  EXPECT_EQ(dirty_pages((*vm)->fetch_dirty_log()), (std::vector<std::uint64_t>{3, 5}));
  // The VMM's own write through its mapping is invisible to KVM's log: GuestMemory's host-write
  // log exists for it.
  ASSERT_TRUE(mem->write(0x9000, Bytes(1, 0x44), "host write").ok());
  exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  ASSERT_EQ(exit->reason, ExitReason::kHalt);
  EXPECT_EQ(dirty_pages((*vm)->fetch_dirty_log()), (std::vector<std::uint64_t>{7}));
  EXPECT_TRUE(dirty_pages((*vm)->fetch_dirty_log()).empty());
  ASSERT_TRUE((*vm)->disable_dirty_log().ok());
  EXPECT_EQ(region.host[0x3000], 0x11);
  EXPECT_EQ(region.host[0x7000], 0x33);
}

}  // namespace
}  // namespace cloister::vmm
