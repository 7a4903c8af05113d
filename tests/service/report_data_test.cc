#include "cloister/service/report_data.h"

#include <gtest/gtest.h>

#include "cloister/common/base64.h"
#include "cloister/common/hex.h"

namespace cloister::service::kbs {
namespace {

// RFC 7517 §A.1's example P-256 key, as a KBS client sends it.
EcTeeKey rfc7517_key() {
  return {"P-256", "ECDH-ES+A256KW", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
          "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"};
}

std::string nonce_0_to_31() {
  Bytes bytes(32);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i);
  return to_base64(bytes);
}

// research/service.md §a.5's worked example.
TEST(ReportData, WorkedExamplePrimaryObject) {
  const std::string nonce = nonce_0_to_31();
  EXPECT_EQ(nonce, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  auto text = binding_object(rfc7517_key(), nonce, "");
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text,
            R"({"additional-evidence":"","nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",)"
            R"("tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC",)"
            R"("x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",)"
            R"("y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}})");
  auto digest = binding_digest(rfc7517_key(), nonce, "");
  ASSERT_TRUE(digest);
  EXPECT_EQ(to_hex(*digest),
            "8a6244441b1b1171b3a1d56a693d4ce116c1f9ca1ae558bc5f59d46dada54cf49e92a361ab2472c43465"
            "2fed5887f16d");
  auto report_data = expected_report_data(rfc7517_key(), nonce, "");
  ASSERT_TRUE(report_data);
  EXPECT_EQ(to_hex(*report_data), to_hex(*digest) + std::string(32, '0'));
}

TEST(ReportData, WorkedExampleDeviceObject) {
  auto digest = binding_digest(rfc7517_key(), nonce_0_to_31(), std::nullopt);
  ASSERT_TRUE(digest);
  EXPECT_EQ(to_hex(*digest),
            "90df2d9286ca24c8a886cb47e5ca7eb5f81250b2bf3cae2adb51d1978b49690ab9d4efe1c17385028f91"
            "f83d3fef0193");
}

// Extra JWK members never reach the hash: the server hashes the typed key it parsed.
TEST(ReportData, ExtraJwkMembersAreDroppedBeforeHashing) {
  auto jwk = to_json(TeePubKey(rfc7517_key()));
  jwk["kid"] = "1";
  jwk["use"] = "enc";
  auto parsed = parse_tee_pubkey(jwk);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*binding_digest(*parsed, nonce_0_to_31(), ""),
            *binding_digest(rfc7517_key(), nonce_0_to_31(), ""));
}

TEST(ReportData, SelectedHashDecidesTheDigestLength) {
  const std::string nonce = nonce_0_to_31();
  EXPECT_EQ(binding_digest(rfc7517_key(), nonce, "", HashAlgorithm::kSha256)->size(), 32u);
  EXPECT_EQ(binding_digest(rfc7517_key(), nonce, "", HashAlgorithm::kSha512)->size(), 64u);
  auto padded = expected_report_data(rfc7517_key(), nonce, "", HashAlgorithm::kSha256);
  ASSERT_TRUE(padded);
  EXPECT_TRUE(is_all_zero(ByteView(*padded).subspan(32)));
  // Any change of nonce, key or additional evidence changes the binding.
  const auto base = *expected_report_data(rfc7517_key(), nonce, "");
  EXPECT_NE(*expected_report_data(rfc7517_key(), nonce, "{}"), base);
  auto other = rfc7517_key();
  other.alg = "RSA-OAEP-256";
  EXPECT_NE(*expected_report_data(other, nonce, ""), base);
}

}  // namespace
}  // namespace cloister::service::kbs
