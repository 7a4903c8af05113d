// Boot-protocol structures: a real Debian kernel's header (when available) in boot_params,
// e820, MP tables, and placing parsed images in guest memory.
#include "cloister/vmm/boot/boot.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "cloister/common/file.h"
#include "cloister/firmware_loader/bzimage.h"
#include "cloister/firmware_loader/elf.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/vmm/arch/x86/boot_params.h"
#include "cloister/vmm/arch/x86/e820.h"
#include "cloister/vmm/arch/x86/layout.h"
#include "cloister/vmm/arch/x86/mptable.h"
#include "kernel_builder.h"

namespace cloister::vmm {
namespace {

using namespace x86;
using ::cloister::testing::synthetic_bzimage;
using ::cloister::testing::synthetic_elf;
namespace bzimage = fw::bzimage;

TEST(BzImageTest, RealDebianKernelHeader) {
  const char* env = std::getenv("CLOISTER_DEBIAN_KERNEL_DIR");
  const char* dir = env ? env : CLOISTER_DEBIAN_KERNEL_DIR;
  std::optional<std::filesystem::path> kernel;
  for (const auto& base : {std::string(dir ? dir : ""), std::string("/boot")}) {
    if (base.empty() || !std::filesystem::is_directory(base)) continue;
    for (const auto& e : std::filesystem::directory_iterator(base))
      if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) kernel = e.path();
    if (kernel) break;
  }
  if (!kernel)
    GTEST_SKIP() << "no Debian kernel in " << dir
                 << " or /boot: tests/vmm/fetch-debian-kernel.sh (the vmm.fetch_debian_kernel "
                    "test) could not download linux-image-cloud-amd64's kernel package";
  auto image = read_file(*kernel, fw::kKernelFileLimit);
  ASSERT_TRUE(image.ok()) << image.error().message();
  auto bz = fw::parse_bzimage(*image);
  ASSERT_TRUE(bz.ok()) << kernel->string() << ": " << bz.error().message();
  // Facts every Debian 12 amd64 kernel has: boot protocol 2.15, 64-bit entry, relocatable,
  // loaded at 16 MiB, 2 MiB alignment, 2 KiB command lines.
  EXPECT_EQ(bz->version, 0x020f);
  EXPECT_TRUE(bz->xloadflags & bzimage::kXlfKernel64);
  EXPECT_TRUE(bz->relocatable);
  EXPECT_EQ(bz->pref_address, 0x1000000u);
  EXPECT_EQ(bz->kernel_alignment, 0x200000u);
  EXPECT_EQ(bz->cmdline_size, 2047u);
  EXPECT_GT(bz->init_size, bz->protected_mode.size());
  auto zp = build_zero_page({bz->setup_header, 0x20000, 10, 0, 0, build_e820(512ull << 20)});
  ASSERT_TRUE(zp.ok());
  EXPECT_EQ(load_le32(*zp, bzimage::kHeaderMagic), 0x53726448u);
  EXPECT_EQ((*zp)[bzimage::kTypeOfLoader], 0xff);
}

TEST(E820Test, SmallVmHasLowRamOnly) {
  auto map = build_e820(64ull << 20);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[0], (E820Entry{0, 0x9fc00, E820Type::kRam}));
  EXPECT_EQ(map[1], (E820Entry{0x9fc00, 0x60400, E820Type::kReserved}));
  EXPECT_EQ(map[2], (E820Entry{0x100000, (64ull << 20) - 0x100000, E820Type::kRam}));
}

TEST(E820Test, LargeVmSplitsAroundTheMmioGap) {
  auto map = build_e820(5ull << 30);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[2], (E820Entry{0x100000, 0xc0000000 - 0x100000, E820Type::kRam}));
  EXPECT_EQ(map[3], (E820Entry{1ull << 32, (5ull << 30) - 0xc0000000, E820Type::kRam}));
  std::uint64_t ram = 0;
  for (const auto& e : map)
    if (e.type == E820Type::kRam) ram += e.size;
  EXPECT_EQ(ram, (5ull << 30) - 0x100000 + 0x9fc00);
}

TEST(ZeroPageTest, LoaderFieldsAndE820) {
  ZeroPageInputs in;
  in.cmdline_addr = 0x20000;
  in.cmdline_size = 12;
  in.initrd_addr = 0x1234000;
  in.initrd_size = 0x5678;
  in.e820 = build_e820(64ull << 20);
  auto zp = build_zero_page(in);
  ASSERT_TRUE(zp.ok());
  const auto& p = *zp;
  EXPECT_EQ(load_le16(p, bzimage::kBootFlag), 0xaa55);
  EXPECT_EQ(load_le32(p, bzimage::kHeaderMagic), 0x53726448u);
  EXPECT_EQ(p[bzimage::kTypeOfLoader], 0xff);
  EXPECT_EQ(load_le32(p, bzimage::kCmdLinePtr), 0x20000u);
  EXPECT_EQ(load_le32(p, bzimage::kCmdlineSize), 12u);
  EXPECT_EQ(load_le32(p, bzimage::kRamdiskImage), 0x1234000u);
  EXPECT_EQ(load_le32(p, bzimage::kRamdiskSize), 0x5678u);
  EXPECT_EQ(p[zero_page::kE820Entries], 3);
  EXPECT_EQ(load_le64(p, zero_page::kE820Table + 2 * 20), 0x100000u);
  EXPECT_EQ(load_le32(p, zero_page::kE820Table + 2 * 20 + 16), 1u);
  in.e820.resize(129, in.e820[0]);
  EXPECT_FALSE(build_zero_page(in).ok());
}

std::uint8_t byte_sum(ByteView b) {
  std::uint8_t sum = 0;
  for (auto x : b) sum = static_cast<std::uint8_t>(sum + x);
  return sum;
}

TEST(MpTableTest, FloatingPointerTableAndEntries) {
  const Bytes mp = build_mptable(4, mptable::kAddress, 0xfee00000, 0xfec00000);
  ASSERT_GE(mp.size(), 16u + 44u);
  EXPECT_EQ(std::string(mp.begin(), mp.begin() + 4), "_MP_");
  EXPECT_EQ(load_le32(mp, 4), mptable::kAddress + 16);
  EXPECT_EQ(byte_sum(ByteView(mp).subspan(0, 16)), 0);  // §4.1: the 16 bytes sum to zero
  ByteView table = ByteView(mp).subspan(16);
  EXPECT_EQ(std::string(table.begin(), table.begin() + 4), "PCMP");
  const std::uint16_t length = load_le16(table, 4);
  ASSERT_EQ(length, table.size());
  EXPECT_EQ(byte_sum(table), 0);  // §4.2: the base table sums to zero
  EXPECT_EQ(load_le32(table, 36), 0xfee00000u);
  const std::uint16_t count = load_le16(table, 34);
  EXPECT_EQ(count, 4 + 1 + 1 + 16 + 2);
  // Walk the entries: processors first (APIC IDs 0..3, 0 the BSP), then the IOAPIC with ID 4.
  std::size_t at = 44;
  int processors = 0, ioapics = 0, irqs = 0;
  for (std::uint16_t i = 0; i < count; ++i) {
    const std::uint8_t type = table[at];
    if (type == mptable::kEntryProcessor) {
      EXPECT_EQ(table[at + 1], processors);
      EXPECT_EQ(table[at + 3], processors == 0 ? 3 : 1);
      ++processors;
      at += 20;
    } else {
      if (type == mptable::kEntryIoapic) {
        ++ioapics;
        EXPECT_EQ(table[at + 1], 4);
        EXPECT_EQ(load_le32(table, at + 4), 0xfec00000u);
      }
      if (type == mptable::kEntryIoInterrupt) {
        EXPECT_EQ(table[at + 5], table[at + 7]);  // ISA IRQ n -> IOAPIC pin n
        ++irqs;
      }
      at += 8;
    }
  }
  EXPECT_EQ(at, table.size());
  EXPECT_EQ(processors, 4);
  EXPECT_EQ(ioapics, 1);
  EXPECT_EQ(irqs, 16);
}

TEST(BootPlacementTest, ElfKernelGetsBootParamsPageTablesAndCmdline) {
  BootImages images;
  images.kind = BootKind::kElf;
  images.elf_file = synthetic_elf(0x100000, 32, 64);
  images.elf = *fw::parse_elf(images.elf_file);
  images.cmdline = "console=ttyS0";
  images.initrd = Bytes{'R', 'D'};
  const std::uint64_t ram = 16ull << 20;
  auto mem = GuestMemory::create(memory_layout(ram, images), false);
  ASSERT_TRUE(mem.ok()) << mem.error().message();
  auto entry = place_boot_images(images, *mem, ram, 2);
  ASSERT_TRUE(entry.ok()) << entry.error().message();
  EXPECT_TRUE(entry->long_mode);
  EXPECT_EQ(entry->rip, 0x100010u);
  EXPECT_EQ(entry->boot_params, layout::kZeroPageAddr);
  std::uint8_t byte[1];
  ASSERT_TRUE(mem->read(0x100000, byte, "test").ok());
  EXPECT_EQ(byte[0], 0xab);
  ASSERT_TRUE(mem->read(0x100020, byte, "test").ok());
  EXPECT_EQ(byte[0], 0);  // bss beyond p_filesz
  std::uint8_t zp[4096];
  ASSERT_TRUE(mem->read(layout::kZeroPageAddr, zp, "test").ok());
  EXPECT_EQ(load_le32(zp, bzimage::kCmdLinePtr), layout::kCmdlineAddr);
  const std::uint32_t initrd = load_le32(zp, bzimage::kRamdiskImage);
  EXPECT_EQ(initrd, (ram - 4096));  // top of RAM, page aligned
  std::uint8_t pml4[8];
  ASSERT_TRUE(mem->read(layout::kPml4Addr, pml4, "test").ok());
  EXPECT_EQ(load_le64(pml4, 0), layout::kPdptAddr | 3);
  std::uint8_t pd_last[8];
  ASSERT_TRUE(mem->read(layout::kPdAddr + 511 * 8, pd_last, "test").ok());
  EXPECT_EQ(load_le64(pd_last, 0), (511ull << 21) | 0x83);

  Regs regs;
  Sregs sregs;
  long_mode_entry_state(*entry, regs, sregs);
  EXPECT_EQ(regs.rip, 0x100010u);
  EXPECT_EQ(regs.rsi, layout::kZeroPageAddr);
  EXPECT_EQ(sregs.cs.selector, 0x10);
  EXPECT_TRUE(sregs.cs.l);
  EXPECT_EQ(sregs.ds.selector, 0x18);
  EXPECT_EQ(sregs.efer, kEferLme | kEferLma);
  EXPECT_TRUE(sregs.cr0 & kCr0Pg);
}

TEST(BootPlacementTest, KernelThatDoesNotFitIsRejected) {
  BootImages images;
  images.kind = BootKind::kBzImage;
  images.bzimage = *fw::parse_bzimage(synthetic_bzimage());
  auto mem = GuestMemory::create(memory_layout(8ull << 20, images), false);
  ASSERT_TRUE(mem.ok());
  auto entry = place_boot_images(images, *mem, 8ull << 20, 1);
  ASSERT_FALSE(entry.ok());
  EXPECT_NE(entry.error().message().find("kernel needs RAM up to 0x1020000"), std::string::npos);
}

// The boot page tables map the first 1 GiB: a kernel or ELF segment beyond it, or an ELF entry
// point outside every loaded segment, would fault on the guest's first instruction.
TEST(BootPlacementTest, KernelsTheEntryStateCannotReachAreRejected) {
  const std::uint64_t ram = 2ull << 30;
  BootImages high;
  high.kind = BootKind::kElf;
  high.elf_file = synthetic_elf(0x50000000, 32, 64);
  high.elf = *fw::parse_elf(high.elf_file);
  auto mem = GuestMemory::create(memory_layout(ram, high), false);
  ASSERT_TRUE(mem.ok()) << mem.error().message();
  auto placed = place_boot_images(high, *mem, ram, 1);
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.error().message(),
            "ELF segment at 0x50000000 + 0x40 must lie between 1 MiB and 0x40000000 (the end of "
            "low RAM or of what the boot page tables map)");

  BootImages stray;
  stray.kind = BootKind::kElf;
  stray.elf_file = synthetic_elf(0x100000, 32, 64);
  store_le64(stray.elf_file, 24, 0x200000);  // e_entry
  stray.elf = *fw::parse_elf(stray.elf_file);
  placed = place_boot_images(stray, *mem, ram, 1);
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.error().message(),
            "ELF entry point 0x200000 is in no loadable segment (the guest would start on "
            "unloaded memory)");
}

TEST(BootPlacementTest, FirmwareEndsAtFourGiBAndIsReadOnlyToTheGuest) {
  BootImages images;
  images.kind = BootKind::kFirmware;
  images.firmware = Bytes(64 * 1024, 0x90);
  auto layout = memory_layout(64ull << 20, images);
  ASSERT_EQ(layout.size(), 2u);
  EXPECT_EQ(layout[1].guest_phys_addr, (1ull << 32) - 64 * 1024);
  EXPECT_TRUE(layout[1].read_only_to_guest);
  auto mem = GuestMemory::create(layout, false);
  ASSERT_TRUE(mem.ok());
  auto entry = place_boot_images(images, *mem, 64ull << 20, 1);
  ASSERT_TRUE(entry.ok());
  EXPECT_FALSE(entry->long_mode);
  std::uint8_t b[1];
  ASSERT_TRUE(mem->read(0xfffffff0, b, "test").ok());
  EXPECT_EQ(b[0], 0x90);
  EXPECT_FALSE(mem->write(0xfffffff0, b, "device DMA").ok());
}

}  // namespace
}  // namespace cloister::vmm
