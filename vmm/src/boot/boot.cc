#include "cloister/vmm/boot/boot.h"

#include <algorithm>

#include "cloister/common/file.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/vmm/arch/x86/boot_params.h"
#include "cloister/vmm/arch/x86/e820.h"
#include "cloister/vmm/arch/x86/layout.h"
#include "cloister/vmm/arch/x86/mptable.h"
#include "cloister/vmm/format.h"

namespace cloister::vmm {
namespace {

namespace L = x86::layout;

// GDT for the 64-bit boot protocol: __BOOT_CS = 0x10, __BOOT_DS = 0x18 (boot.rst, "64-bit
// BOOT PROTOCOL"), plus a TSS descriptor KVM wants for TR.
constexpr std::uint64_t kGdt[] = {
    0,                      // null
    0,                      // unused
    0x00af9b000000ffffull,  // 0x10: 64-bit code, present, accessed
    0x00cf93000000ffffull,  // 0x18: data, flat, present, accessed
    0x00808b0000000fffull,  // 0x20: 64-bit TSS (busy)
};
constexpr std::uint16_t kCodeSelector = 0x10;
constexpr std::uint16_t kDataSelector = 0x18;
constexpr std::uint16_t kTssSelector = 0x20;
constexpr std::uint64_t kDefaultInitrdAddrMax = 0x37ffffff;  // protocol < 2.03 default

// The end of the RAM below the MMIO gap, where kernel, initrd and boot structures go.
std::uint64_t low_ram_end(std::uint64_t ram_size) {
  const auto ram = fw::ram_ranges(ram_size);
  return ram.empty() ? 0 : ram.front().size;
}

Status write_le64_array(const GuestMemory& memory, std::uint64_t gpa,
                        std::span<const std::uint64_t> values, std::string_view what) {
  Bytes bytes(values.size() * 8);
  for (std::size_t i = 0; i < values.size(); ++i) store_le64(bytes, i * 8, values[i]);
  return memory.write(gpa, bytes, what);
}

// What write_page_tables() identity-maps: the 64-bit entry state reaches nothing beyond it.
constexpr std::uint64_t kIdentityMapped = std::uint64_t{1} << 30;

Status write_page_tables(const GuestMemory& memory) {
  // PML4[0] -> PDPT, PDPT[0] -> PD, PD maps the first 1 GiB with 2 MiB pages.
  const std::uint64_t pml4[] = {L::kPdptAddr | 0x3};
  const std::uint64_t pdpt[] = {L::kPdAddr | 0x3};
  std::vector<std::uint64_t> pd(512);
  for (std::uint64_t i = 0; i < pd.size(); ++i) pd[i] = (i << 21) | 0x83;
  CLOISTER_CHECK_OK(write_le64_array(memory, L::kPml4Addr, pml4, "page tables (PML4)"));
  CLOISTER_CHECK_OK(write_le64_array(memory, L::kPdptAddr, pdpt, "page tables (PDPT)"));
  return write_le64_array(memory, L::kPdAddr, pd, "page tables (PD)");
}

Result<std::uint64_t> place_initrd(const BootImages& images, const GuestMemory& memory,
                                   std::uint64_t ram_size, std::uint64_t kernel_end,
                                   std::uint64_t addr_max) {
  const Bytes& initrd = *images.initrd;
  const std::uint64_t top = std::min(low_ram_end(ram_size), addr_max + 1);
  if (initrd.size() > top || ((top - initrd.size()) & ~0xfffull) < kernel_end)
    return Error("initrd: " + std::to_string(initrd.size()) +
                 " bytes do not fit between the kernel end " + hex(kernel_end) + " and " +
                 hex(top) + " (give the VM more memory)");
  const std::uint64_t addr = (top - initrd.size()) & ~0xfffull;
  CLOISTER_CHECK_OK(memory.write(addr, initrd, "initrd"));
  return addr;
}

}  // namespace

std::string_view boot_kind_name(BootKind kind) {
  switch (kind) {
    case BootKind::kFirmware:
      return "firmware";
    case BootKind::kBzImage:
      return "bzImage";
    case BootKind::kElf:
      return "elf";
  }
  return "unknown";
}

Result<BootImages> load_boot_images(const BootConfig& boot) {
  BootImages images;
  images.cmdline = boot.cmdline;
  if (boot.firmware) {
    auto firmware = read_file(*boot.firmware, fw::kFirmwareFileLimit);
    if (!firmware) return firmware.error().with_context("firmware");
    images.firmware = std::move(*firmware);
    const std::size_t size = images.firmware.size();
    if (size == 0 || size % 4096 != 0)
      return Error("firmware " + *boot.firmware +
                   ": expected a non-zero multiple of 4 KiB, found " + std::to_string(size) +
                   " bytes");
    images.kind = BootKind::kFirmware;
    return images;
  }
  auto read_kernel = read_file(*boot.kernel, fw::kKernelFileLimit);
  if (!read_kernel) return read_kernel.error().with_context("kernel");
  Bytes kernel = std::move(*read_kernel);
  if (fw::looks_like_bzimage(kernel)) {
    auto bz = fw::parse_bzimage(kernel);
    if (!bz) return bz.error().with_context("kernel " + *boot.kernel);
    if (boot.cmdline.size() > bz->cmdline_size)
      return Error("cmdline: " + std::to_string(boot.cmdline.size()) +
                   " bytes, but the kernel accepts at most " + std::to_string(bz->cmdline_size) +
                   " (setup header cmdline_size)");
    images.kind = BootKind::kBzImage;
    images.bzimage = std::move(*bz);
  } else if (fw::looks_like_elf(kernel)) {
    auto elf = fw::parse_elf(kernel);
    if (!elf) return elf.error().with_context("kernel " + *boot.kernel);
    images.kind = BootKind::kElf;
    images.elf = std::move(*elf);
    images.elf_file = std::move(kernel);
  } else {
    return Error("kernel " + *boot.kernel +
                 ": neither a bzImage (boot_flag 0xaa55 and \"HdrS\") nor an ELF file");
  }
  if (boot.initrd) {
    auto initrd = read_file(*boot.initrd, fw::kInitrdFileLimit);
    if (!initrd) return initrd.error().with_context("initrd");
    images.initrd = std::move(*initrd);
  }
  return images;
}

std::vector<RegionSpec> memory_layout(std::uint64_t ram_size, const BootImages& images) {
  std::vector<RegionSpec> specs;
  const auto ram = fw::ram_ranges(ram_size);
  for (std::size_t i = 0; i < ram.size(); ++i)
    specs.push_back({i == 0 ? "ram-low" : "ram-high", ram[i].gpa, ram[i].size, false});
  if (images.kind == BootKind::kFirmware)
    specs.push_back(
        {"firmware", L::kFourGiB - images.firmware.size(), images.firmware.size(), true});
  return specs;
}

Result<BootEntry> place_boot_images(const BootImages& images, const GuestMemory& memory,
                                    std::uint64_t ram_size, std::uint32_t vcpus) {
  if (images.kind == BootKind::kFirmware) {
    CLOISTER_CHECK_OK(
        memory.load(L::kFourGiB - images.firmware.size(), images.firmware, "firmware"));
    return BootEntry{};
  }
  const std::uint64_t low_ram = low_ram_end(ram_size);
  BootEntry entry;
  entry.long_mode = true;
  entry.boot_params = L::kZeroPageAddr;
  std::uint64_t kernel_end = 0;
  std::uint64_t initrd_addr_max = kDefaultInitrdAddrMax;
  ByteView setup_header;
  if (images.kind == BootKind::kBzImage) {
    const auto& bz = *images.bzimage;
    const std::uint64_t load = bz.pref_address;
    kernel_end = load + std::max<std::uint64_t>(bz.init_size, bz.protected_mode.size());
    if (kernel_end > low_ram)
      return Error("kernel needs RAM up to " + hex(kernel_end) + " (pref_address " + hex(load) +
                   " + init_size), the VM has " + hex(low_ram) + " below the MMIO gap");
    if (kernel_end > kIdentityMapped)
      return Error("kernel needs RAM up to " + hex(kernel_end) + " (pref_address " + hex(load) +
                   " + init_size), beyond the first " + hex(kIdentityMapped) +
                   " the boot page tables map");
    CLOISTER_CHECK_OK(memory.write(load, bz.protected_mode, "kernel"));
    entry.rip = load + fw::bzimage::kEntry64Offset;
    initrd_addr_max = bz.initrd_addr_max;
    setup_header = bz.setup_header;
  } else {
    for (const auto& seg : images.elf->segments) {
      const std::uint64_t end = std::min(low_ram, kIdentityMapped);
      if (seg.phys_addr < L::kHighMemStart || seg.phys_addr + seg.mem_size > end)
        return Error("ELF segment at " + hex(seg.phys_addr) + " + " + hex(seg.mem_size) +
                     " must lie between 1 MiB and " + hex(end) +
                     " (the end of low RAM or of what the boot page tables map)");
      CLOISTER_TRY(auto dst,
                   memory.view(seg.phys_addr, seg.mem_size, Access::kWrite, "ELF segment"));
      std::copy_n(images.elf_file.begin() + static_cast<std::ptrdiff_t>(seg.file_offset),
                  seg.file_size, dst.begin());
      std::fill(dst.begin() + static_cast<std::ptrdiff_t>(seg.file_size), dst.end(), 0);
      kernel_end = std::max(kernel_end, seg.phys_addr + seg.mem_size);
    }
    const auto& segments = images.elf->segments;
    if (std::none_of(segments.begin(), segments.end(), [&](const auto& seg) {
          return images.elf->entry >= seg.phys_addr &&
                 images.elf->entry - seg.phys_addr < seg.mem_size;
        }))
      return Error("ELF entry point " + hex(images.elf->entry) +
                   " is in no loadable segment (the guest would start on unloaded memory)");
    entry.rip = images.elf->entry;
  }

  x86::ZeroPageInputs zp;
  zp.setup_header = setup_header;
  zp.e820 = x86::build_e820(ram_size);
  if (images.cmdline.size() + 1 > L::kCmdlineMaxSize)
    return Error("cmdline: at most " + std::to_string(L::kCmdlineMaxSize - 1) + " bytes, found " +
                 std::to_string(images.cmdline.size()));
  Bytes cmdline(images.cmdline.begin(), images.cmdline.end());
  cmdline.push_back(0);
  CLOISTER_CHECK_OK(memory.write(L::kCmdlineAddr, cmdline, "kernel command line"));
  zp.cmdline_addr = L::kCmdlineAddr;
  zp.cmdline_size = static_cast<std::uint32_t>(images.cmdline.size());
  if (images.initrd) {
    CLOISTER_TRY(zp.initrd_addr,
                 place_initrd(images, memory, ram_size, kernel_end, initrd_addr_max));
    zp.initrd_size = images.initrd->size();
  }
  CLOISTER_TRY(auto zero_page, x86::build_zero_page(zp));
  CLOISTER_CHECK_OK(memory.write(L::kZeroPageAddr, zero_page, "boot_params"));
  CLOISTER_CHECK_OK(write_le64_array(memory, L::kGdtAddr, kGdt, "GDT"));
  const std::uint64_t idt[] = {0};
  CLOISTER_CHECK_OK(write_le64_array(memory, L::kIdtAddr, idt, "IDT"));
  CLOISTER_CHECK_OK(write_page_tables(memory));
  const Bytes mp =
      x86::build_mptable(vcpus, x86::mptable::kAddress, static_cast<std::uint32_t>(L::kLapicAddr),
                         static_cast<std::uint32_t>(L::kIoapicAddr));
  if (x86::mptable::kAddress + mp.size() > L::kHighMemStart)
    return Error("MP table for " + std::to_string(vcpus) + " vCPUs does not fit below 1 MiB");
  CLOISTER_CHECK_OK(memory.write(x86::mptable::kAddress, mp, "MP table"));
  return entry;
}

void long_mode_entry_state(const BootEntry& entry, x86::Regs& regs, x86::Sregs& sregs) {
  x86::Segment code;
  code.base = 0;
  code.limit = 0xfffff;
  code.selector = kCodeSelector;
  code.type = 0xb;  // execute/read, accessed
  code.present = true;
  code.s = true;
  code.l = true;
  code.g = true;
  x86::Segment data = code;
  data.selector = kDataSelector;
  data.type = 0x3;  // read/write, accessed
  data.l = false;
  data.db = true;
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  x86::Segment tss;
  tss.limit = 0xfff;
  tss.selector = kTssSelector;
  tss.type = 0xb;  // busy 64-bit TSS
  tss.present = true;
  sregs.tr = tss;
  sregs.gdt = {L::kGdtAddr, static_cast<std::uint16_t>(sizeof kGdt - 1)};
  sregs.idt = {L::kIdtAddr, 7};
  sregs.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Pg;
  sregs.cr3 = L::kPml4Addr;
  sregs.cr4 = x86::kCr4Pae;
  sregs.efer = x86::kEferLme | x86::kEferLma;

  regs = x86::Regs{};
  regs.rip = entry.rip;
  regs.rsi = entry.boot_params;
  regs.rsp = regs.rbp = L::kBootStackTop;
  regs.rflags = 0x2;
}

}  // namespace cloister::vmm
