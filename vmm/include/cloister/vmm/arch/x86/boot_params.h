// The Linux "zero page" (struct boot_params, Documentation/arch/x86/zero-page.rst) that a
// 64-bit boot loader hands the kernel in RSI.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/vmm/arch/x86/e820.h"

namespace cloister::vmm::x86 {

namespace zero_page {
inline constexpr std::size_t kSize = 4096;
inline constexpr std::size_t kExtRamdiskImage = 0x0c0;
inline constexpr std::size_t kExtRamdiskSize = 0x0c4;
inline constexpr std::size_t kExtCmdLinePtr = 0x0c8;
inline constexpr std::size_t kE820Entries = 0x1e8;
inline constexpr std::size_t kSetupHeader = 0x1f1;
inline constexpr std::size_t kE820Table = 0x2d0;
inline constexpr std::size_t kE820EntrySize = 20;
inline constexpr std::uint8_t kLoaderUndefined = 0xff;  // type_of_loader for unlisted loaders
}  // namespace zero_page

struct ZeroPageInputs {
  // The kernel's setup header bytes ([0x1f1, end) of a bzImage). Empty for an ELF kernel, in
  // which case the loader writes the boot flag, "HdrS" and version 2.15 itself.
  ByteView setup_header;
  std::uint64_t cmdline_addr = 0;
  std::uint32_t cmdline_size = 0;  // without the NUL
  std::uint64_t initrd_addr = 0;
  std::uint64_t initrd_size = 0;
  std::vector<E820Entry> e820;
};

// Builds the 4 KiB zero page. Fails when the e820 map has more than kE820MaxEntries entries or
// the setup header does not fit.
Result<std::array<std::uint8_t, zero_page::kSize>> build_zero_page(const ZeroPageInputs& in);

}  // namespace cloister::vmm::x86
