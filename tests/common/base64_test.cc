#include "cloister/common/base64.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

TEST(Base64, DecodesRfc4648TestVectorsInTheUrlAlphabet) {
  // RFC 4648 §10, with and without padding.
  EXPECT_EQ(*from_base64url(""), Bytes{});
  EXPECT_EQ(*from_base64url("Zg"), text("f"));
  EXPECT_EQ(*from_base64url("Zg=="), text("f"));
  EXPECT_EQ(*from_base64url("Zm8"), text("fo"));
  EXPECT_EQ(*from_base64url("Zm8="), text("fo"));
  EXPECT_EQ(*from_base64url("Zm9v"), text("foo"));
  EXPECT_EQ(*from_base64url("Zm9vYmFy"), text("foobar"));
  // The two characters that differ from standard base64: 0xfb 0xff -> "-_8".
  EXPECT_EQ(*from_base64url("-_8"), (Bytes{0xfb, 0xff}));
  // A JWK exponent.
  EXPECT_EQ(*from_base64url("AQAB"), (Bytes{0x01, 0x00, 0x01}));
}

TEST(Base64, RejectsTheStandardAlphabetBadLengthsAndNonCanonicalBits) {
  EXPECT_EQ(from_base64url("+/8").error().message(), "base64url: invalid character at position 0");
  EXPECT_EQ(from_base64url("Z").error().message(),
            "base64url: 1 characters leave a single character in the last group");
  EXPECT_EQ(from_base64url("Zh").error().message(),
            "base64url: non-zero bits after the last byte (not canonical)");
  EXPECT_EQ(from_base64url("Zg=a").error().message(),
            "base64url: invalid character at position 2 (padding before the end)");
  EXPECT_FALSE(from_base64url("Zg==="));
}

}  // namespace
}  // namespace cloister
