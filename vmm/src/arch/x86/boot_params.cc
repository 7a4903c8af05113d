#include "cloister/vmm/arch/x86/boot_params.h"

#include <algorithm>
#include <string>

#include "cloister/firmware_loader/bzimage.h"

namespace cloister::vmm::x86 {

Result<std::array<std::uint8_t, zero_page::kSize>> build_zero_page(const ZeroPageInputs& in) {
  using namespace zero_page;
  std::array<std::uint8_t, kSize> page{};
  std::span<std::uint8_t> out(page);
  if (in.e820.size() > kE820MaxEntries)
    return Error("e820 map: at most " + std::to_string(kE820MaxEntries) +
                 " entries fit in boot_params, found " + std::to_string(in.e820.size()));
  if (!in.setup_header.empty()) {
    if (in.setup_header.size() > kE820Table - kSetupHeader)
      return Error("setup header: at most " + std::to_string(kE820Table - kSetupHeader) +
                   " bytes fit in boot_params, found " + std::to_string(in.setup_header.size()));
    std::copy(in.setup_header.begin(), in.setup_header.end(), page.begin() + kSetupHeader);
  } else {
    store_le16(out, fw::bzimage::kBootFlag, fw::bzimage::kBootFlagValue);
    store_le32(out, fw::bzimage::kHeaderMagic, fw::bzimage::kHeaderMagicValue);
    store_le16(out, fw::bzimage::kVersion, 0x020f);
    page[fw::bzimage::kLoadflags] = fw::bzimage::kLoadedHigh;
  }
  page[fw::bzimage::kTypeOfLoader] = kLoaderUndefined;
  store_le32(out, fw::bzimage::kCmdLinePtr, static_cast<std::uint32_t>(in.cmdline_addr));
  store_le32(out, kExtCmdLinePtr, static_cast<std::uint32_t>(in.cmdline_addr >> 32));
  store_le32(out, fw::bzimage::kCmdlineSize, in.cmdline_size);
  store_le32(out, fw::bzimage::kRamdiskImage, static_cast<std::uint32_t>(in.initrd_addr));
  store_le32(out, kExtRamdiskImage, static_cast<std::uint32_t>(in.initrd_addr >> 32));
  store_le32(out, fw::bzimage::kRamdiskSize, static_cast<std::uint32_t>(in.initrd_size));
  store_le32(out, kExtRamdiskSize, static_cast<std::uint32_t>(in.initrd_size >> 32));
  page[kE820Entries] = static_cast<std::uint8_t>(in.e820.size());
  for (std::size_t i = 0; i < in.e820.size(); ++i) {
    const std::size_t at = kE820Table + i * kE820EntrySize;
    store_le64(out, at, in.e820[i].addr);
    store_le64(out, at + 8, in.e820[i].size);
    store_le32(out, at + 16, static_cast<std::uint32_t>(in.e820[i].type));
  }
  return page;
}

}  // namespace cloister::vmm::x86
