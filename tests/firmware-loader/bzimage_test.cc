// bzImage setup-header parsing: a synthetic header, each rejected field by name, and the
// setup/payload split that measured direct boot hashes.
#include "cloister/firmware_loader/bzimage.h"

#include <gtest/gtest.h>

#include "cloister/firmware_loader/snp.h"
#include "kernel_builder.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::synthetic_bzimage;

std::string bz_error(const Bytes& image) {
  auto r = parse_bzimage(image);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message();
}

TEST(BzImageTest, ParsesASyntheticHeader) {
  Bytes image = synthetic_bzimage();
  ASSERT_TRUE(looks_like_bzimage(image));
  auto bz = parse_bzimage(image);
  ASSERT_TRUE(bz.ok()) << bz.error().message();
  EXPECT_EQ(bz->version, 0x020f);
  EXPECT_EQ(bz->setup_size, 1024u);
  EXPECT_EQ(bz->pref_address, 0x1000000u);
  EXPECT_EQ(bz->init_size, 0x20000u);
  EXPECT_TRUE(bz->relocatable);
  EXPECT_EQ(bz->cmdline_size, 2047u);
  EXPECT_EQ(bz->protected_mode.size(), 4096u);
  EXPECT_EQ(bz->protected_mode[5], 5);
  EXPECT_EQ(bz->setup_header.size(), 0x26cu - 0x1f1u);
}

TEST(BzImageTest, RejectsEachBrokenFieldByName) {
  {
    Bytes i = synthetic_bzimage();
    i[bzimage::kBootFlag] = 0;
    EXPECT_EQ(bz_error(i), "bzImage boot_flag (offset 0x1fe): expected 0xaa55, found 0xaa00");
  }
  {
    Bytes i = synthetic_bzimage();
    i[bzimage::kHeaderMagic] = 'X';
    EXPECT_NE(bz_error(i).find("bzImage header (offset 0x202): expected \"HdrS\""),
              std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    store_le16(i, bzimage::kVersion, 0x0206);
    EXPECT_EQ(
        bz_error(i),
        "bzImage version (offset 0x206): expected >= 0x020c (boot protocol 2.12), found 0x206");
  }
  {
    Bytes i = synthetic_bzimage();
    i[bzimage::kJump + 1] = 0x10;
    EXPECT_NE(bz_error(i).find("header length"), std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    i[bzimage::kSetupSects] = 200;
    EXPECT_NE(bz_error(i).find("setup_sects (offset 0x1f1)"), std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    store_le32(i, bzimage::kSyssize, 0x10000);
    EXPECT_NE(bz_error(i).find("syssize (offset 0x1f4)"), std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    i[bzimage::kLoadflags] = 0;
    EXPECT_NE(bz_error(i).find("loadflags (offset 0x211): expected LOADED_HIGH"),
              std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    store_le16(i, bzimage::kXloadflags, 0x0002);
    EXPECT_NE(bz_error(i).find("xloadflags (offset 0x236): expected XLF_KERNEL_64"),
              std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    store_le32(i, bzimage::kKernelAlignment, 0x300000);
    EXPECT_NE(bz_error(i).find("kernel_alignment (offset 0x230): expected a power of two"),
              std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    i[bzimage::kRelocatableKernel] = 0;
    store_le64(i, bzimage::kPrefAddress, 0x1100000);
    EXPECT_NE(
        bz_error(i).find("pref_address (offset 0x258): expected a multiple of kernel_alignment"),
        std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    store_le32(i, bzimage::kInitSize, 100);
    EXPECT_NE(bz_error(i).find("init_size (offset 0x260)"), std::string::npos);
  }
  {
    Bytes i = synthetic_bzimage();
    store_le32(i, bzimage::kCmdlineSize, 0);
    EXPECT_NE(bz_error(i).find("cmdline_size"), std::string::npos);
  }
  EXPECT_NE(bz_error(Bytes(100, 0)).find("too short"), std::string::npos);
}

// QEMU's SEV kernel hash is SHA-256 over setup || kernel as its x86 loader splits the bzImage
// (the setup header is left unpatched under SEV, target/i386/sev.c and hw/i386/x86-common.c);
// the two parts are the whole file in order, so the hash of the file is that hash.
TEST(BzImageTest, SetupAndPayloadAreTheFileSevHashesHash) {
  const Bytes image = synthetic_bzimage(5000);
  auto bz = parse_bzimage(image);
  ASSERT_TRUE(bz.ok()) << bz.error().message();
  Bytes split(image.begin(), image.begin() + bz->setup_size);
  split.insert(split.end(), bz->protected_mode.begin(), bz->protected_mode.end());
  EXPECT_EQ(SevHashes::compute(image, {}, "").kernel, sha256(split));
}

}  // namespace
}  // namespace cloister::fw
