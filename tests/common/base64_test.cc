#include "cloister/common/base64.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

// RFC 4648 §10 test vectors.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(to_base64(as_bytes(plain)), encoded);
    auto back = from_base64(encoded);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, Bytes(as_bytes(plain).begin(), as_bytes(plain).end()));
  }
}

TEST(Base64, UrlAlphabetWithoutPadding) {
  const Bytes bytes{0xfb, 0xff, 0xbf, 0x00};
  EXPECT_EQ(to_base64(bytes), "+/+/AA==");
  EXPECT_EQ(to_base64url(bytes), "-_-_AA");
  EXPECT_EQ(*from_base64url("-_-_AA"), bytes);
  // RFC 7515 §A.1's protected header.
  EXPECT_EQ(to_base64url(as_bytes("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}")),
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
}

TEST(Base64, RejectsWhatItWouldNotProduce) {
  EXPECT_EQ(from_base64("Zg=").error().message(), "base64: length 3 is not a multiple of 4");
  EXPECT_EQ(from_base64("Zm9v\n").error().message(), "base64: length 5 is not a multiple of 4");
  EXPECT_EQ(from_base64("Zh==").error().message(),
            "base64: non-zero unused bits in the last character (position 1)");
  EXPECT_EQ(from_base64("-_-_").error().message(), "base64: invalid character 0x2d at position 0");
  EXPECT_EQ(from_base64("Z===").error().message(), "base64: invalid character 0x3d at position 1");
  EXPECT_EQ(from_base64url("Zg==").error().message(),
            "base64url: invalid character 0x3d at position 2");
  EXPECT_EQ(from_base64url("+/").error().message(),
            "base64url: invalid character 0x2b at position 0");
  EXPECT_EQ(from_base64url("Zm9vY").error().message(),
            "base64url: 5 characters cannot encode whole bytes");
}

// Trustee's Azure evidence JSON pads its base64url; kOptional takes both forms, and padding
// that does not complete the last quantum is still refused.
TEST(Base64, UrlWithOptionalPadding) {
  constexpr auto kOptional = Base64UrlPadding::kOptional;
  EXPECT_EQ(*from_base64url("Zg", kOptional), (Bytes{'f'}));
  EXPECT_EQ(*from_base64url("Zg==", kOptional), (Bytes{'f'}));
  EXPECT_EQ(*from_base64url("Zm8=", kOptional), (Bytes{'f', 'o'}));
  EXPECT_EQ(*from_base64url("-_8=", kOptional), (Bytes{0xfb, 0xff}));
  EXPECT_EQ(from_base64url("Zg=", kOptional).error().message(),
            "base64url: invalid character 0x3d at position 2");
  EXPECT_EQ(from_base64url("Zg=a", kOptional).error().message(),
            "base64url: invalid character 0x3d at position 2");
  EXPECT_EQ(from_base64url("Z===", kOptional).error().message(),
            "base64url: invalid character 0x3d at position 1");
  EXPECT_EQ(from_base64url("Zh==", kOptional).error().message(),
            "base64url: non-zero unused bits in the last character (position 1)");
}

}  // namespace
}  // namespace cloister
