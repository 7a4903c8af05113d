#include "cloister/firmware_loader/vmsa.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cloister::fw {
namespace {

using ::testing::HasSubstr;

TEST(Vmsa, EncodesFieldsAtTheirApmOffsets) {
  VmsaRegisters r;
  r.cs = {0xf000, 0x9b, 0xffff, 0xffff0000};
  r.rip = 0xfff0;
  r.rdx = 0xa00f11;
  r.sev_features = 0x21;
  r.mxcsr = 0x1f80;
  r.x87_fcw = 0x37f;
  r.r8_r15[7] = 0x15;
  const VmsaPage page = encode_vmsa(r);
  EXPECT_EQ(load_le16(page, 0x10), 0xf000);
  EXPECT_EQ(load_le16(page, 0x12), 0x9b);
  EXPECT_EQ(load_le32(page, 0x14), 0xffffu);
  EXPECT_EQ(load_le64(page, 0x18), 0xffff0000u);
  EXPECT_EQ(load_le64(page, 0x178), 0xfff0u);
  EXPECT_EQ(load_le64(page, 0x310), 0xa00f11u);
  EXPECT_EQ(load_le64(page, 0x3b0), 0x21u);
  EXPECT_EQ(load_le32(page, 0x408), 0x1f80u);
  EXPECT_EQ(load_le16(page, 0x410), 0x37f);
  EXPECT_EQ(load_le64(page, 0x378), 0x15u);
}

TEST(Vmsa, DecodeInvertsEncode) {
  VmsaRegisters r;
  r.es = {1, 2, 3, 4};
  r.tr = {5, 6, 7, 8};
  r.efer = 0x1000;
  r.cr0 = 0x11;
  r.cr3 = 0x9000;
  r.cr4 = 0x40;
  r.dr6 = 0xffff0ff0;
  r.dr7 = 0x400;
  r.rflags = 2;
  r.rsp = 0x8ff0;
  r.rax = 1;
  r.rbx = 2;
  r.rcx = 3;
  r.rsi = 0x7000;
  r.rdi = 5;
  r.rbp = 6;
  r.r8_r15 = {8, 9, 10, 11, 12, 13, 14, 15};
  r.g_pat = 0x0007040600070406;
  r.xcr0 = 1;
  const VmsaPage page = encode_vmsa(r);
  auto back = decode_vmsa(page);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(*back, r);
}

TEST(Vmsa, DecodeRefusesStateItCannotRepresent) {
  VmsaPage page = encode_vmsa({});
  page[0x3b8] = 1;  // VINTR_CTRL
  auto r = decode_vmsa(page);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("byte at offset 0x3b8 is 0x1"));
  EXPECT_THAT(decode_vmsa(ByteView(page).subspan(1)).error().message(),
              HasSubstr("expected 4096 bytes, found 4095"));
}

}  // namespace
}  // namespace cloister::fw
