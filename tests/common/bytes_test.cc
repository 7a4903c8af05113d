#include "cloister/common/bytes.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

TEST(ByteReader, ReadsLittleEndianFieldsInOrder) {
  const Bytes data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                      0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
  ByteReader r(data);
  EXPECT_EQ(*r.u8("a"), 0x01);
  EXPECT_EQ(*r.u16("b"), 0x0302);
  EXPECT_EQ(*r.u32("c"), 0x07060504u);
  EXPECT_EQ(*r.u64("d"), 0x0f0e0d0c0b0a0908ull);
  EXPECT_TRUE(r.at_end());
}

TEST(ByteReader, ShortReadNamesFieldOffsetAndShortfall) {
  const Bytes data = {0xaa, 0xbb, 0xcc};
  ByteReader r(data);
  ASSERT_TRUE(r.u16("header"));
  auto v = r.u32("length");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message(), "length at offset 2: needs 4 bytes, only 1 left");
  // A failed read consumes nothing.
  EXPECT_EQ(r.offset(), 2u);
  EXPECT_EQ(*r.u8("tail"), 0xcc);
}

TEST(ByteReader, BytesAndSkipAreBoundsChecked) {
  const Bytes data(10, 0x11);
  ByteReader r(data);
  ASSERT_TRUE(r.skip(4, "pad"));
  auto six = r.bytes(6, "body");
  ASSERT_TRUE(six);
  EXPECT_EQ(six->size(), 6u);
  EXPECT_FALSE(r.bytes(1, "extra"));
  EXPECT_FALSE(r.skip(1, "extra"));
  EXPECT_TRUE(r.bytes(0, "empty"));
}

TEST(Bytes, StoreThenLoadRoundTrips) {
  Bytes buf(16);
  store_le16(buf, 0, 0xbeef);
  store_le32(buf, 2, 0xdeadbeef);
  store_le64(buf, 6, 0x0123456789abcdefull);
  EXPECT_EQ(buf[0], 0xef);
  EXPECT_EQ(buf[1], 0xbe);
  EXPECT_EQ(load_le16(buf, 0), 0xbeef);
  EXPECT_EQ(load_le32(buf, 2), 0xdeadbeefu);
  EXPECT_EQ(load_le64(buf, 6), 0x0123456789abcdefull);
  EXPECT_FALSE(is_all_zero(buf));
  EXPECT_TRUE(is_all_zero(Bytes(5)));
}

}  // namespace
}  // namespace cloister
