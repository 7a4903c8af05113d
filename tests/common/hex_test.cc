#include "cloister/common/hex.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

TEST(Hex, EncodesLowerCase) {
  EXPECT_EQ(to_hex(Bytes{0x00, 0xab, 0xff, 0x10}), "00abff10");
}

TEST(Hex, NumbersHaveAPrefixAndNoLeadingZeros) {
  EXPECT_EQ(hex_number(0), "0x0");
  EXPECT_EQ(hex_number(0x80b004), "0x80b004");
  EXPECT_EQ(hex_number(0xffffffffffffffffull), "0xffffffffffffffff");
}

TEST(Hex, DecodesEitherCaseWithOptionalPrefix) {
  EXPECT_EQ(*from_hex("00ABff10"), (Bytes{0x00, 0xab, 0xff, 0x10}));
  EXPECT_EQ(*from_hex("0xAB"), (Bytes{0xab}));
  EXPECT_EQ(*from_hex(""), Bytes{});
}

TEST(Hex, RejectsOddLengthAndBadDigitsWithPosition) {
  EXPECT_EQ(from_hex("abc").error().message(), "hex string has an odd number of digits (3)");
  EXPECT_EQ(from_hex("a0g1").error().message(),
            "hex string has a non-hex character 'g' at position 2");
  // A byte that is not printable ASCII is quoted as \xNN, never raw.
  EXPECT_EQ(from_hex(std::string_view("a0\x1b"
                                      "1",
                                      4))
                .error()
                .message(),
            "hex string has a non-hex character '\\x1b' at position 2");
  EXPECT_EQ(hex_byte("\xc3\xa9").error().message(),
            "expected a byte as two hex digits, found '\\xc3\\xa9'");
}

TEST(Hex, ExactLengthNamesExpectedAndFound) {
  EXPECT_TRUE(from_hex_exact("0011", 2));
  EXPECT_EQ(from_hex_exact("0011", 3).error().message(),
            "expected 3 bytes (6 hex digits), found 2 bytes");
}

TEST(Hex, AByteIsExactlyTwoDigitsWithoutPrefix) {
  EXPECT_EQ(*hex_byte("aB"), 0xab);
  EXPECT_EQ(*hex_byte("00"), 0x00);
  EXPECT_EQ(hex_byte("0X").error().message(), "expected a byte as two hex digits, found '0X'");
  EXPECT_EQ(hex_byte("abc").error().message(), "expected a byte as two hex digits, found 'abc'");
  EXPECT_FALSE(hex_byte("a"));
  EXPECT_FALSE(hex_byte("g0"));
}

}  // namespace
}  // namespace cloister
