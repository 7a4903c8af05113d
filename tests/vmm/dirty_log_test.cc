// Live migration's dirty-page tracking without KVM: the bitmap arithmetic (hypervisor/
// dirty_log.h), GuestMemory's host-write log, the KVM dirty log's ioctls over the recording
// ioctl layer (KVM_SET_USER_MEMORY_REGION with KVM_MEM_LOG_DIRTY_PAGES, KVM_GET_DIRTY_LOG, then
// KVM_CLEAR_DIRTY_LOG with manual protection), and make_page_tracker()'s choice.
#include "cloister/vmm/hypervisor/dirty_log.h"

#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <cstring>
#include <map>

#include "cloister/vmm/hypervisor/emu.h"
#include "cloister/vmm/hypervisor/kvm.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "cloister/vmm/migration/page_tracker.h"
#include "kvm_recorder.h"
#include "recorded_vm.h"
#include "tracker_pass.h"

namespace cloister::vmm {
namespace {

using testing::KvmRecorder;
using testing::payload_as;

constexpr std::uint64_t kPage = 4096;

TEST(DirtyLogTest, BitmapsTakeWholeWords) {
  EXPECT_EQ(dirty_bitmap_words(0), 0u);
  EXPECT_EQ(dirty_bitmap_words(1), 1u);
  EXPECT_EQ(dirty_bitmap_words(64), 1u);
  EXPECT_EQ(dirty_bitmap_words(65), 2u);
  EXPECT_EQ(dirty_bitmap_words(262144), 4096u);  // 1 GiB of 4 KiB pages: 32 KiB of bitmap
}

TEST(DirtyLogTest, RunsFollowTheSetBitsAcrossWords) {
  // Pages 0, 2-3, 62-66 (across the word boundary), 127 (the last bit of word 1), 128-191
  // (a whole word).
  std::vector<std::uint64_t> bitmap(3, 0);
  mark_dirty_pages(bitmap, 0, 1);
  mark_dirty_pages(bitmap, 2, 2);
  mark_dirty_pages(bitmap, 62, 5);
  mark_dirty_pages(bitmap, 127, 1);
  mark_dirty_pages(bitmap, 128, 64);
  EXPECT_EQ(bitmap[0], 0xc00000000000000dull);
  EXPECT_EQ(bitmap[1], 0x8000000000000007ull);
  EXPECT_EQ(bitmap[2], ~0ull);
  auto runs = dirty_page_runs(bitmap, 192);
  ASSERT_TRUE(runs.ok()) << runs.error().message();
  EXPECT_EQ(*runs, (std::vector<PageRun>{{0, 1}, {2, 2}, {62, 5}, {127, 65}}));
}

TEST(DirtyLogTest, BitsBeyondTheSlotAreIgnored) {
  // A 70-page slot: bits 70..127 of the second word name no page.
  std::vector<std::uint64_t> bitmap = {0, ~0ull};
  auto runs = dirty_page_runs(bitmap, 70);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(*runs, (std::vector<PageRun>{{64, 6}}));
  auto none = dirty_page_runs(std::vector<std::uint64_t>{0, 0}, 70);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(DirtyLogTest, ShortBitmapsAndMismatchedMergesAreRefused) {
  auto runs = dirty_page_runs(std::vector<std::uint64_t>{~0ull}, 65);
  ASSERT_FALSE(runs.ok());
  EXPECT_EQ(runs.error().message(),
            "dirty log: bitmap length: expected at least 2 words for 65 pages, found 1");
  std::vector<std::uint64_t> into = {1, 0};
  const std::vector<std::uint64_t> from = {2};
  auto merged = merge_dirty_bitmap(into, from);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.error().message(),
            "dirty log merge: bitmap length: expected 2 words, found 1 (logs of different memory "
            "slots)");
}

TEST(DirtyLogTest, MergeIsTheUnion) {
  std::vector<std::uint64_t> kvm = {0b0011, 0};
  const std::vector<std::uint64_t> host = {0b0110, 1ull << 63};
  ASSERT_TRUE(merge_dirty_bitmap(kvm, host).ok());
  EXPECT_EQ(kvm, (std::vector<std::uint64_t>{0b0111, 1ull << 63}));
}

GuestMemory ram_and_firmware() {
  const RegionSpec specs[] = {{"ram-low", 0, 128 * kPage, false},
                              {"firmware", 0x100000, 4 * kPage, true}};
  auto memory = GuestMemory::create(specs, false);
  EXPECT_TRUE(memory.ok()) << memory.error().message();
  return std::move(*memory);
}

TEST(GuestMemoryWriteLogTest, MarksTheVmmsWritesWhileOnAndReportsEachTwice) {
  GuestMemory memory = ram_and_firmware();
  const Bytes two_pages(kPage + 1, 0xab);
  // Off: nothing is marked.
  ASSERT_TRUE(memory.write(5 * kPage, two_pages, "test").ok());
  memory.start_write_log();
  EXPECT_TRUE(memory.write_log_on());
  auto taken = memory.take_write_log();
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0], std::vector<std::uint64_t>(2, 0));
  EXPECT_EQ(taken[1], std::vector<std::uint64_t>(1, 0));

  // write() (pages 70 and 71: it straddles them), load() into firmware, and a write view.
  ASSERT_TRUE(memory.write(70 * kPage + kPage - 1, Bytes(2, 1), "test").ok());
  ASSERT_TRUE(memory.load(0x100000 + 2 * kPage, Bytes(16, 2), "test").ok());
  ASSERT_TRUE(memory.view(3 * kPage, 8, Access::kWrite, "test").ok());
  // Reads and read views are not writes.
  std::uint8_t byte = 0;
  ASSERT_TRUE(memory.read(9 * kPage, {&byte, 1}, "test").ok());
  ASSERT_TRUE(memory.view(10 * kPage, 8, Access::kRead, "test").ok());
  taken = memory.take_write_log();
  const std::vector<std::vector<std::uint64_t>> expected = {{1ull << 3, (1ull << 6) | (1ull << 7)},
                                                            {1ull << 2}};
  EXPECT_EQ(taken, expected);
  // The next take reports them again (a write through the view may land after a pass read the
  // page), then they are gone.
  ASSERT_TRUE(memory.write(0, Bytes(1, 3), "test").ok());
  taken = memory.take_write_log();
  std::vector<std::vector<std::uint64_t>> again = expected;
  again[0][0] |= 1;
  EXPECT_EQ(taken, again);
  taken = memory.take_write_log();
  EXPECT_EQ(taken[0], (std::vector<std::uint64_t>{1, 0}));
  EXPECT_EQ(taken[1], std::vector<std::uint64_t>(1, 0));

  memory.stop_write_log();
  EXPECT_FALSE(memory.write_log_on());
  ASSERT_TRUE(memory.write(0, Bytes(1, 4), "test").ok());
  memory.start_write_log();  // starts empty
  EXPECT_EQ(memory.take_write_log()[0], std::vector<std::uint64_t>(2, 0));
}

// A device's write through a view can begin before the log is on (a disk read in flight when the
// migration starts) and land after the passes that report the view's own mark: the device marks
// the buffer again once the write is done, and write() does so after its copy.
TEST(GuestMemoryWriteLogTest, AWriteThatOutlastsItsViewsMarkIsMarkedWhenItLands) {
  GuestMemory memory = ram_and_firmware();
  auto buffer = memory.view(4 * kPage, 2 * kPage, Access::kWrite, "test");  // log still off
  ASSERT_TRUE(buffer.ok());
  memory.start_write_log();
  EXPECT_EQ(memory.take_write_log()[0], std::vector<std::uint64_t>(2, 0));  // pass 1 sees nothing
  std::fill(buffer->begin(), buffer->end(), 0x5a);                          // the read lands
  memory.written(4 * kPage, 2 * kPage);
  EXPECT_EQ(memory.take_write_log()[0], (std::vector<std::uint64_t>{(1ull << 4) | (1ull << 5), 0}));
  memory.written(1ull << 40, kPage);  // outside guest memory: nothing
  memory.stop_write_log();
  memory.written(4 * kPage, kPage);  // log off: nothing
  memory.start_write_log();
  EXPECT_EQ(memory.take_write_log()[0], std::vector<std::uint64_t>(2, 0));
}

// A plain KVM VM over the recorder with `memory`'s regions as slots 0, 1, ... (as the builder
// maps them).
struct RecordedKvmVm : testing::RecordedVm {
  explicit RecordedKvmVm(KvmRecorder& recorder, const GuestMemory& memory) : RecordedVm(recorder) {
    if (!vm) return;
    std::uint32_t slot = 0;
    for (const GuestRegion& r : memory.regions()) {
      MemorySlot s;
      s.slot = slot++;
      s.guest_phys_addr = r.guest_phys_addr;
      s.size = r.size;
      s.host_address = r.host;
      s.read_only = r.read_only_to_guest;
      EXPECT_TRUE(vm->map_memory(s).ok());
    }
  }
};

TEST(KvmDirtyLogTest, ManualProtectionIsEnabledAtCreationAndEachFetchClearsWhatItRead) {
  KvmRecorder host;
  GuestMemory memory = ram_and_firmware();
  RecordedKvmVm kvm(host, memory);
  const auto enable = payload_as<kvm_enable_cap>(host.named("KVM_ENABLE_CAP").at(0));
  EXPECT_EQ(enable.cap, static_cast<std::uint32_t>(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
  EXPECT_EQ(enable.args[0], static_cast<std::uint64_t>(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE));
  ASSERT_TRUE(kvm.vm->supports_dirty_log());
  EXPECT_EQ(kvm.vm->dirty_log_ioctls().size(), 3u);

  ASSERT_TRUE(kvm.vm->enable_dirty_log().ok());
  // The RAM slot is registered again with the log flag; the read-only firmware slot is not.
  const auto regions = host.named("KVM_SET_USER_MEMORY_REGION");
  ASSERT_EQ(regions.size(), 3u);
  const auto logged = payload_as<kvm_userspace_memory_region>(regions[2]);
  EXPECT_EQ(logged.slot, 0u);
  EXPECT_EQ(logged.flags, static_cast<std::uint32_t>(KVM_MEM_LOG_DIRTY_PAGES));
  EXPECT_EQ(logged.memory_size, 128 * kPage);
  EXPECT_EQ(logged.userspace_addr, reinterpret_cast<std::uint64_t>(memory.regions()[0].host));

  host.dirty_logs[0] = {(1ull << 5) | (1ull << 6), 1ull << 63};
  auto logs = kvm.vm->fetch_dirty_log();
  ASSERT_TRUE(logs.ok()) << logs.error().message();
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ((*logs)[0].slot, 0u);
  EXPECT_EQ((*logs)[0].guest_phys_addr, 0u);
  EXPECT_EQ((*logs)[0].pages, 128u);
  EXPECT_EQ((*logs)[0].bitmap, (std::vector<std::uint64_t>{(1ull << 5) | (1ull << 6), 1ull << 63}));
  // KVM_CLEAR_DIRTY_LOG of the whole slot with exactly the bits read.
  const auto clears = host.named("KVM_CLEAR_DIRTY_LOG");
  ASSERT_EQ(clears.size(), 1u);
  const auto clear = payload_as<kvm_clear_dirty_log>(clears[0]);
  EXPECT_EQ(clear.slot, 0u);
  EXPECT_EQ(clear.first_page, 0u);
  EXPECT_EQ(clear.num_pages, 128u);
  Bytes bits(16, 0);
  bits[0] = 0x60;
  bits[15] = 0x80;
  EXPECT_EQ(clears[0].data, bits);
  // Nothing written since: an empty log.
  logs = kvm.vm->fetch_dirty_log();
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ((*logs)[0].bitmap, std::vector<std::uint64_t>(2, 0));

  ASSERT_TRUE(kvm.vm->disable_dirty_log().ok());
  const auto after = host.named("KVM_SET_USER_MEMORY_REGION");
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(payload_as<kvm_userspace_memory_region>(after[3]).flags, 0u);
  // Off: KVM would refuse the read (ENOENT), so nothing is read.
  logs = kvm.vm->fetch_dirty_log();
  ASSERT_TRUE(logs.ok());
  EXPECT_TRUE(logs->empty());
}

TEST(KvmDirtyLogTest, WithoutManualProtectionTheFetchAloneClears) {
  KvmRecorder host;
  host.caps.erase(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
  GuestMemory memory = ram_and_firmware();
  RecordedKvmVm kvm(host, memory);
  EXPECT_TRUE(host.named("KVM_ENABLE_CAP").empty());
  EXPECT_EQ(kvm.vm->dirty_log_ioctls().size(), 2u);
  ASSERT_TRUE(kvm.vm->enable_dirty_log().ok());
  host.dirty_logs[0] = {1, 0};
  auto logs = kvm.vm->fetch_dirty_log();
  ASSERT_TRUE(logs.ok()) << logs.error().message();
  EXPECT_EQ((*logs)[0].bitmap, (std::vector<std::uint64_t>{1, 0}));
  EXPECT_TRUE(host.named("KVM_CLEAR_DIRTY_LOG").empty());
  EXPECT_EQ(host.dirty_logs[0], (std::vector<std::uint64_t>{0, 0}));
}

TEST(KvmDirtyLogTest, ConfidentialVmsHaveNoDirtyLog) {
  KvmRecorder host;
  auto hv = open_kvm("/dev/kvm", host);
  ASSERT_TRUE(hv.ok()) << hv.error().message();
  VmOptions options;
  options.machine_type = 4;  // SEV-SNP
  auto vm = (*hv)->create_vm(options);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  EXPECT_FALSE((*vm)->supports_dirty_log());
  EXPECT_TRUE((*vm)->dirty_log_ioctls().empty());
  auto st = (*vm)->enable_dirty_log();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(st.error().message(),
            "kvm: dirty-page logging of a VM of type 4: expected a plain VM (type 0); KVM cannot "
            "log writes to private memory");
}

TEST(PageTrackerTest, KvmTrackerSendsWhatKvmAndTheVmmLogged) {
  KvmRecorder host;
  GuestMemory memory = ram_and_firmware();
  std::uint8_t* ram = memory.regions()[0].host;
  ram[0] = 1;
  ram[7 * kPage] = 2;
  memory.regions()[1].host[kPage] = 3;
  RecordedKvmVm kvm(host, memory);
  {
    auto tracker = make_page_tracker(*kvm.vm, memory);
    ASSERT_TRUE(tracker.ok()) << tracker.error().message();
    EXPECT_EQ((*tracker)->name(), kKvmDirtyLogTracker);
    EXPECT_TRUE(memory.write_log_on());

    // First pass: every page with data, the firmware after the 128 pages of RAM.
    EXPECT_EQ(run_pass(**tracker), (Sent{{0, 1}, {7 * kPage, 2}, {129 * kPage, 3}}));
    // The guest wrote pages 7 and 8 (KVM's log), the VMM page 100 and the firmware page 3.
    ram[7 * kPage] = 4;
    ram[8 * kPage] = 5;
    host.dirty_logs[0] = {(1ull << 7) | (1ull << 8), 0};
    ASSERT_TRUE(memory.write(100 * kPage, Bytes(1, 6), "virtqueue used.ring").ok());
    ASSERT_TRUE(memory.load(0x100000 + 3 * kPage, Bytes(1, 7), "firmware").ok());
    EXPECT_EQ(run_pass(**tracker),
              (Sent{{7 * kPage, 4}, {8 * kPage, 5}, {100 * kPage, 6}, {131 * kPage, 7}}));
    // KVM's bits were cleared by the fetch; the VMM's writes are reported once more.
    EXPECT_EQ(run_pass(**tracker), (Sent{{100 * kPage, 6}, {131 * kPage, 7}}));
    EXPECT_TRUE(run_pass(**tracker).empty());
  }
  // Destroying the tracker stops both logs.
  EXPECT_FALSE(memory.write_log_on());
  const auto regions = host.named("KVM_SET_USER_MEMORY_REGION");
  EXPECT_EQ(payload_as<kvm_userspace_memory_region>(regions.back()).flags, 0u);
}

TEST(PageTrackerTest, EmuGetsTheContentTracker) {
  auto hv = open_emulator();
  if (!hv) GTEST_SKIP() << hv.error().message();
  auto vm = (*hv)->create_vm({});
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  EXPECT_FALSE((*vm)->supports_dirty_log());
  EXPECT_TRUE((*vm)->dirty_log_ioctls().empty());
  GuestMemory memory = ram_and_firmware();
  memory.regions()[0].host[3 * kPage] = 9;
  auto tracker = make_page_tracker(**vm, memory);
  ASSERT_TRUE(tracker.ok()) << tracker.error().message();
  EXPECT_EQ((*tracker)->name(), kContentTracker);
  EXPECT_FALSE(memory.write_log_on());
  EXPECT_EQ(run_pass(**tracker), (Sent{{3 * kPage, 9}}));
}

}  // namespace
}  // namespace cloister::vmm
