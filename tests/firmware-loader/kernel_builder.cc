#include "kernel_builder.h"

#include <span>

#include "cloister/firmware_loader/bzimage.h"

namespace cloister::testing {

Bytes synthetic_bzimage(std::size_t payload) {
  namespace bz = fw::bzimage;
  Bytes image(2 * 512 + payload, 0);
  std::span<std::uint8_t> out(image);
  image[bz::kSetupSects] = 1;
  store_le32(out, bz::kSyssize, static_cast<std::uint32_t>((payload + 15) / 16));
  store_le16(out, bz::kBootFlag, 0xaa55);
  image[bz::kJump] = 0xeb;
  image[bz::kJump + 1] = 0x6a;  // header through 0x26c
  store_le32(out, bz::kHeaderMagic, 0x53726448);
  store_le16(out, bz::kVersion, 0x020f);
  image[bz::kLoadflags] = 0x01;
  store_le32(out, bz::kInitrdAddrMax, 0x7fffffff);
  store_le32(out, bz::kKernelAlignment, 0x200000);
  image[bz::kRelocatableKernel] = 1;
  store_le16(out, bz::kXloadflags, 0x0003);
  store_le32(out, bz::kCmdlineSize, 2047);
  store_le64(out, bz::kPrefAddress, 0x1000000);
  store_le32(out, bz::kInitSize, 0x20000);
  for (std::size_t i = 0; i < payload; ++i) image[1024 + i] = static_cast<std::uint8_t>(i);
  return image;
}

Bytes synthetic_elf(std::uint64_t paddr, std::uint64_t filesz, std::uint64_t memsz) {
  Bytes f(64 + 56 + filesz, 0);
  std::span<std::uint8_t> o(f);
  f[0] = 0x7f, f[1] = 'E', f[2] = 'L', f[3] = 'F', f[4] = 2, f[5] = 1, f[6] = 1;
  store_le16(o, 16, 2);
  store_le16(o, 18, 62);
  store_le32(o, 20, 1);
  store_le64(o, 24, paddr + 0x10);
  store_le64(o, 32, 64);
  store_le16(o, 54, 56);
  store_le16(o, 56, 1);
  store_le32(o, 64, 1);
  store_le64(o, 64 + 8, 120);
  store_le64(o, 64 + 24, paddr);
  store_le64(o, 64 + 32, filesz);
  store_le64(o, 64 + 40, memsz);
  for (std::size_t i = 0; i < filesz; ++i) f[120 + i] = 0xab;
  return f;
}

}  // namespace cloister::testing
