// ELF64 parsing for direct boot: PT_LOAD segments and named rejections.
#include "cloister/firmware_loader/elf.h"

#include <gtest/gtest.h>

#include "kernel_builder.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::synthetic_elf;

TEST(ElfTest, ParsesLoadSegments) {
  auto elf = parse_elf(synthetic_elf(0x100000, 32, 64));
  ASSERT_TRUE(elf.ok()) << elf.error().message();
  EXPECT_EQ(elf->entry, 0x100010u);
  ASSERT_EQ(elf->segments.size(), 1u);
  EXPECT_EQ(elf->segments[0].file_offset, 120u);
  EXPECT_EQ(elf->segments[0].mem_size, 64u);
}

TEST(ElfTest, RejectsBrokenHeaders) {
  Bytes f = synthetic_elf(0x100000, 32, 64);
  f[18] = 3;  // EM_386
  EXPECT_EQ(parse_elf(f).error().message(), "ELF e_machine: expected 62 (EM_X86_64), found 3");
  f = synthetic_elf(0x100000, 32, 16);
  EXPECT_NE(parse_elf(f).error().message().find("p_memsz: expected >= p_filesz"),
            std::string::npos);
  f = synthetic_elf(0x100000, 32, 64);
  store_le64(f, 64 + 32, 4096);
  EXPECT_NE(parse_elf(f).error().message().find("runs past the"), std::string::npos);
  f = synthetic_elf(0x100000, 32, 64);
  store_le16(f, 56, 1000);
  EXPECT_NE(parse_elf(f).error().message().find("e_phnum"), std::string::npos);
}

}  // namespace
}  // namespace cloister::fw
