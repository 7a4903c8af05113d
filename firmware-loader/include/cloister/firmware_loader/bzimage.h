// Linux bzImage parsing (Documentation/arch/x86/boot.rst, "THE REAL-MODE KERNEL HEADER").
// Offsets below are file offsets of the setup header fields. parse_bzimage() is the one parser
// of this untrusted format; it checks every field a 64-bit direct-boot loader relies on and
// names the field, the expected and the found value on rejection.
#pragma once

#include <cstdint>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::fw {

namespace bzimage {
inline constexpr std::size_t kSetupSects = 0x1f1;
inline constexpr std::size_t kSyssize = 0x1f4;
inline constexpr std::size_t kBootFlag = 0x1fe;
inline constexpr std::size_t kJump = 0x200;
inline constexpr std::size_t kHeaderMagic = 0x202;
inline constexpr std::size_t kVersion = 0x206;
inline constexpr std::size_t kTypeOfLoader = 0x210;
inline constexpr std::size_t kLoadflags = 0x211;
inline constexpr std::size_t kCode32Start = 0x214;
inline constexpr std::size_t kRamdiskImage = 0x218;
inline constexpr std::size_t kRamdiskSize = 0x21c;
inline constexpr std::size_t kCmdLinePtr = 0x228;
inline constexpr std::size_t kInitrdAddrMax = 0x22c;
inline constexpr std::size_t kKernelAlignment = 0x230;
inline constexpr std::size_t kRelocatableKernel = 0x234;
inline constexpr std::size_t kXloadflags = 0x236;
inline constexpr std::size_t kCmdlineSize = 0x238;
inline constexpr std::size_t kPrefAddress = 0x258;
inline constexpr std::size_t kInitSize = 0x260;
inline constexpr std::size_t kHeaderEndMin = 0x264 + 4;  // through init_size (protocol 2.10+)

inline constexpr std::uint16_t kBootFlagValue = 0xaa55;
inline constexpr std::uint32_t kHeaderMagicValue = 0x53726448;  // "HdrS"
inline constexpr std::uint16_t kMinVersion = 0x020c;            // 2.12: xloadflags
inline constexpr std::uint8_t kLoadedHigh = 0x01;
inline constexpr std::uint16_t kXlfKernel64 = 0x0001;
inline constexpr std::uint32_t kEntry64Offset = 0x200;  // 64-bit entry from the load address
}  // namespace bzimage

// A parsed bzImage. The file splits, as the x86 boot loaders split it, into the real-mode setup
// part [0, setup_size) and the protected-mode payload [setup_size, end).
struct BzImage {
  std::uint16_t version = 0;
  std::uint32_t setup_size = 0;  // (setup_sects + 1) * 512 bytes, real-mode part
  std::uint8_t loadflags = 0;
  std::uint16_t xloadflags = 0;
  std::uint32_t initrd_addr_max = 0;
  std::uint32_t kernel_alignment = 0;
  bool relocatable = false;
  std::uint32_t cmdline_size = 0;  // maximum command line length, excluding the NUL
  std::uint64_t pref_address = 0;
  std::uint32_t init_size = 0;
  // [0x1f1, header end) of the file, copied verbatim into boot_params before the loader's
  // own fields are filled in.
  Bytes setup_header;
  Bytes protected_mode;  // the payload loaded at pref_address
};

Result<BzImage> parse_bzimage(ByteView image);

// True when `image` starts like a bzImage (boot flag and "HdrS" in place), so a loader can
// choose between the bzImage and ELF parsers before calling either.
bool looks_like_bzimage(ByteView image);

}  // namespace cloister::fw
