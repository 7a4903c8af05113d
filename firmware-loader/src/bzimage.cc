#include "cloister/firmware_loader/bzimage.h"

#include <bit>
#include <string>

#include "cloister/common/hex.h"

namespace cloister::fw {
namespace {

Error field_error(std::string_view field, std::size_t offset, const std::string& expected,
                  const std::string& found) {
  return Error("bzImage " + std::string(field) + " (offset " + hex_number(offset) + "): expected " +
               expected + ", found " + found);
}

}  // namespace

bool looks_like_bzimage(ByteView image) {
  return image.size() >= bzimage::kHeaderMagic + 4 &&
         load_le16(image, bzimage::kBootFlag) == bzimage::kBootFlagValue &&
         load_le32(image, bzimage::kHeaderMagic) == bzimage::kHeaderMagicValue;
}

Result<BzImage> parse_bzimage(ByteView image) {
  using namespace bzimage;
  if (image.size() < kHeaderEndMin)
    return Error("bzImage: file is " + std::to_string(image.size()) +
                 " bytes, too short for a setup header (at least " + std::to_string(kHeaderEndMin) +
                 " bytes)");
  if (auto flag = load_le16(image, kBootFlag); flag != kBootFlagValue)
    return field_error("boot_flag", kBootFlag, hex_number(kBootFlagValue), hex_number(flag));
  if (auto magic = load_le32(image, kHeaderMagic); magic != kHeaderMagicValue)
    return field_error("header", kHeaderMagic, "\"HdrS\" (0x53726448)", hex_number(magic));
  BzImage out;
  out.version = load_le16(image, kVersion);
  if (out.version < kMinVersion)
    return field_error("version", kVersion, ">= 0x020c (boot protocol 2.12)",
                       hex_number(out.version));
  if (image[kJump] != 0xeb)
    return field_error("jump", kJump, "0xeb (short jump over the header)",
                       hex_number(image[kJump]));
  const std::size_t header_end = 0x202 + std::size_t{image[kJump + 1]};
  if (header_end < kHeaderEndMin)
    return field_error("header length", kJump + 1,
                       "a header reaching at least " + hex_number(kHeaderEndMin),
                       hex_number(header_end));

  std::uint32_t setup_sects = image[kSetupSects];
  if (setup_sects == 0) setup_sects = 4;  // boot.rst: "if this field is 0, the real value is 4"
  out.setup_size = (setup_sects + 1) * 512;
  if (header_end > out.setup_size)
    return field_error("header length", kJump + 1,
                       "a header inside the " + std::to_string(out.setup_size) + "-byte setup part",
                       hex_number(header_end));
  if (out.setup_size >= image.size())
    return field_error(
        "setup_sects", kSetupSects,
        "a setup part smaller than the " + std::to_string(image.size()) + "-byte file",
        std::to_string(setup_sects) + " sectors");
  const std::uint64_t payload_size = image.size() - out.setup_size;
  const std::uint64_t syssize_bytes = std::uint64_t{load_le32(image, kSyssize)} * 16;
  if (syssize_bytes == 0 || syssize_bytes > payload_size + 15)
    return field_error("syssize", kSyssize,
                       "1.." + std::to_string((payload_size + 15) / 16) +
                           " paragraphs (the payload is " + std::to_string(payload_size) +
                           " bytes)",
                       std::to_string(syssize_bytes / 16));

  out.loadflags = image[kLoadflags];
  if (!(out.loadflags & kLoadedHigh))
    return field_error("loadflags", kLoadflags, "LOADED_HIGH (bit 0) set",
                       hex_number(out.loadflags));
  out.xloadflags = load_le16(image, kXloadflags);
  if (!(out.xloadflags & kXlfKernel64))
    return field_error("xloadflags", kXloadflags,
                       "XLF_KERNEL_64 (bit 0) set: a kernel with the 64-bit entry point",
                       hex_number(out.xloadflags));
  out.kernel_alignment = load_le32(image, kKernelAlignment);
  if (out.kernel_alignment < 4096 || !std::has_single_bit(out.kernel_alignment))
    return field_error("kernel_alignment", kKernelAlignment, "a power of two >= 0x1000",
                       hex_number(out.kernel_alignment));
  const std::uint8_t relocatable = image[kRelocatableKernel];
  if (relocatable > 1)
    return field_error("relocatable_kernel", kRelocatableKernel, "0 or 1", hex_number(relocatable));
  out.relocatable = relocatable == 1;
  out.pref_address = load_le64(image, kPrefAddress);
  if (out.pref_address < 0x100000 || out.pref_address % 4096 != 0 ||
      out.pref_address >= (1ull << 46))
    return field_error("pref_address", kPrefAddress,
                       "a 4 KiB-aligned address between 1 MiB and 64 TiB",
                       hex_number(out.pref_address));
  if (!out.relocatable && out.pref_address % out.kernel_alignment != 0)
    return field_error("pref_address", kPrefAddress,
                       "a multiple of kernel_alignment " + hex_number(out.kernel_alignment),
                       hex_number(out.pref_address));
  out.init_size = load_le32(image, kInitSize);
  if (out.init_size < payload_size)
    return field_error("init_size", kInitSize,
                       ">= the " + std::to_string(payload_size) + "-byte payload",
                       std::to_string(out.init_size));
  out.cmdline_size = load_le32(image, kCmdlineSize);
  if (out.cmdline_size == 0) return field_error("cmdline_size", kCmdlineSize, "> 0", "0");
  out.initrd_addr_max = load_le32(image, kInitrdAddrMax);
  if (out.initrd_addr_max < 0x100000)
    return field_error("initrd_addr_max", kInitrdAddrMax, ">= 0x100000",
                       hex_number(out.initrd_addr_max));

  out.setup_header.assign(image.begin() + kSetupSects, image.begin() + header_end);
  out.protected_mode.assign(image.begin() + out.setup_size, image.end());
  return out;
}

}  // namespace cloister::fw
