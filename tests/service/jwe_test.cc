#include "cloister/service/jwe.h"

#include <gtest/gtest.h>
// José's headers declare C functions without extern "C".
extern "C" {
#include <jose/jose.h>
#include <jose/openssl.h>
}

#include <cstdlib>

#include "cloister/common/base64.h"

namespace cloister::service::jwe {
namespace {

using Kind = TeeKeyPair::Kind;

// José (latchset/jose, Debian's libjose) decrypting our JWE: an implementation independent of
// ours. nullopt when it refuses. Debian's José 11 has no RSA-OAEP-256 when built against
// OpenSSL 3 (its OAEP support is compiled in only where EVP_PKEY_CTX_set_rsa_oaep_md is a
// macro), so it checks the EC key agreements; RSA-OAEP-256 is checked by TeeKeyPair::decrypt.
bool jose_can_decrypt(const TeeKeyPair& pair) {
  return std::holds_alternative<kbs::EcTeeKey>(pair.public_key());
}

std::optional<std::string> jose_decrypt(const TeeKeyPair& pair, const nlohmann::json& jwe) {
  json_t* jwk = jose_openssl_jwk_from_EVP_PKEY(nullptr, pair.openssl_key());
  json_t* object = json_loads(jwe.dump().c_str(), 0, nullptr);
  EXPECT_TRUE(jwk && object);
  std::size_t size = 0;
  void* plaintext = jose_jwe_dec(nullptr, object, nullptr, jwk, &size);
  std::optional<std::string> out;
  if (plaintext) out = std::string(static_cast<const char*>(plaintext), size);
  std::free(plaintext);
  json_decref(object);
  json_decref(jwk);
  return out;
}

TeeKeyPair generate(Kind kind) {
  auto pair = TeeKeyPair::generate(kind);
  EXPECT_TRUE(pair) << pair.error().message();
  return std::move(pair).value();
}

nlohmann::json decoded_header(const nlohmann::json& jwe) {
  const Bytes bytes = *from_base64url(jwe["protected"].get<std::string>());
  return nlohmann::json::parse(bytes.begin(), bytes.end());
}

std::string header_text(const nlohmann::json& jwe) {
  const Bytes bytes = *from_base64url(jwe["protected"].get<std::string>());
  return std::string(bytes.begin(), bytes.end());
}

// kbs-types' unit test of ProtectedHeader serialization.
TEST(Jwe, KbsTypesProtectedHeaderVector) {
  auto text = protected_header_text("fakealg", "fakeenc", nlohmann::json::object());
  ASSERT_TRUE(text);
  EXPECT_EQ(to_base64url(as_bytes(*text)), "eyJhbGciOiJmYWtlYWxnIiwiZW5jIjoiZmFrZWVuYyJ9");
  auto with_epk = protected_header_text(
      "ECDH-ES+A256KW", "A256GCM",
      {{"epk", {{"y", "Y"}, {"x", "X"}, {"kty", "EC"}, {"crv", "P-256"}}}, {"b", 1}});
  ASSERT_TRUE(with_epk);
  EXPECT_EQ(*with_epk, R"({"alg":"ECDH-ES+A256KW","enc":"A256GCM","b":1,)"
                       R"("epk":{"crv":"P-256","kty":"EC","x":"X","y":"Y"}})");
  EXPECT_FALSE(protected_header_text("a", "b", {{"alg", "c"}}));
}

class JweRoundTrip : public ::testing::TestWithParam<Kind> {};

TEST_P(JweRoundTrip, JoseAndOurDecryptionRecoverThePlaintext) {
  const TeeKeyPair pair = generate(GetParam());
  const std::string secret("the tenant's disk key \x00\xff with binary bytes", 42);
  auto jwe = encrypt(pair.public_key(), as_bytes(secret));
  ASSERT_TRUE(jwe) << jwe.error().message();

  std::vector<std::string> members;
  for (const auto& [name, value] : jwe->items()) members.push_back(name);
  EXPECT_EQ(members,
            (std::vector<std::string>{"ciphertext", "encrypted_key", "iv", "protected", "tag"}));
  EXPECT_EQ(from_base64url((*jwe)["iv"].get<std::string>())->size(), 12u);
  EXPECT_EQ(from_base64url((*jwe)["tag"].get<std::string>())->size(), 16u);

  // The header is canonical: serializing the decoded header again (as the guest does for its
  // AAD) gives the same text.
  const nlohmann::json header = decoded_header(*jwe);
  nlohmann::json rest = header;
  rest.erase("alg");
  rest.erase("enc");
  EXPECT_EQ(*protected_header_text(header["alg"].get<std::string>(),
                                   header["enc"].get<std::string>(), rest),
            header_text(*jwe));
  EXPECT_EQ(header["enc"], "A256GCM");
  if (GetParam() == Kind::kRsa3072) {
    EXPECT_EQ(header, (nlohmann::json{{"alg", "RSA-OAEP-256"}, {"enc", "A256GCM"}}));
    EXPECT_EQ(from_base64url((*jwe)["encrypted_key"].get<std::string>())->size(), 384u);
  } else {
    const auto& key = std::get<kbs::EcTeeKey>(pair.public_key());
    EXPECT_EQ(header["alg"], "ECDH-ES+A256KW");
    EXPECT_EQ(header["epk"]["crv"], key.crv);
    EXPECT_EQ(header["epk"].size(), 4u);
    const std::size_t coordinate = key.crv == "P-256" ? 32 : 66;
    EXPECT_EQ(from_base64url(header["epk"]["x"].get<std::string>())->size(), coordinate);
    EXPECT_EQ(from_base64url(header["epk"]["y"].get<std::string>())->size(), coordinate);
    EXPECT_EQ(from_base64url((*jwe)["encrypted_key"].get<std::string>())->size(), 40u);
  }

  if (jose_can_decrypt(pair)) {
    EXPECT_EQ(jose_decrypt(pair, *jwe), secret);
  }
  auto ours = pair.decrypt(*jwe);
  ASSERT_TRUE(ours) << ours.error().message();
  EXPECT_EQ(std::string(ours->begin(), ours->end()), secret);
}

TEST_P(JweRoundTrip, WrongKeyAndAlteredMembersAreRefused) {
  const TeeKeyPair pair = generate(GetParam());
  const TeeKeyPair other = generate(GetParam());
  auto jwe = encrypt(pair.public_key(), as_bytes(std::string("secret")));
  ASSERT_TRUE(jwe);
  EXPECT_FALSE(other.decrypt(*jwe));
  if (jose_can_decrypt(pair)) {
    EXPECT_FALSE(jose_decrypt(other, *jwe));
  }

  auto flipped = [&](const std::string& member, std::size_t index) {
    nlohmann::json copy = *jwe;
    Bytes bytes = *from_base64url(copy[member].get<std::string>());
    bytes.at(index) ^= 0x01;
    copy[member] = to_base64url(bytes);
    return copy;
  };
  const auto bad_tag = flipped("tag", 15);
  auto refused = pair.decrypt(bad_tag);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), "JWE: A256GCM authentication tag does not verify");
  if (jose_can_decrypt(pair)) {
    EXPECT_FALSE(jose_decrypt(pair, bad_tag));
  }
  const auto bad_ciphertext = flipped("ciphertext", 0);
  EXPECT_EQ(pair.decrypt(bad_ciphertext).error().message(),
            "JWE: A256GCM authentication tag does not verify");
  if (jose_can_decrypt(pair)) {
    EXPECT_FALSE(jose_decrypt(pair, bad_ciphertext));
  }
  const auto bad_key = flipped("encrypted_key", 3);
  EXPECT_FALSE(pair.decrypt(bad_key));
  if (jose_can_decrypt(pair)) {
    EXPECT_FALSE(jose_decrypt(pair, bad_key));
  }
  const auto bad_iv = flipped("iv", 0);
  EXPECT_FALSE(pair.decrypt(bad_iv));
  if (jose_can_decrypt(pair)) {
    EXPECT_FALSE(jose_decrypt(pair, bad_iv));
  }
  // The protected header is authenticated (it is the AAD).
  nlohmann::json header = decoded_header(*jwe);
  header["kid"] = "x";
  nlohmann::json bad_header = *jwe;
  bad_header["protected"] = to_base64url(as_bytes(header.dump()));
  EXPECT_FALSE(pair.decrypt(bad_header));
  if (jose_can_decrypt(pair)) {
    EXPECT_FALSE(jose_decrypt(pair, bad_header));
  }
}

INSTANTIATE_TEST_SUITE_P(Keys, JweRoundTrip,
                         ::testing::Values(Kind::kEcP256, Kind::kEcP521, Kind::kRsa3072),
                         [](const auto& param_info) {
                           switch (param_info.param) {
                             case Kind::kEcP256:
                               return std::string("EcP256");
                             case Kind::kEcP521:
                               return std::string("EcP521");
                             case Kind::kRsa3072:
                               return std::string("Rsa3072");
                           }
                           return std::string("unknown");
                         });

TEST(Jwe, RefusesKeysTheWireDoesNotAllow) {
  const TeeKeyPair pair = generate(Kind::kEcP256);
  auto key = std::get<kbs::EcTeeKey>(pair.public_key());
  auto message = [](const kbs::TeePubKey& k) {
    auto r = encrypt(k, as_bytes(std::string("s")));
    return r ? std::string("accepted") : r.error().message();
  };
  auto p384 = key;
  p384.crv = "P-384";
  EXPECT_EQ(message(p384), "JWE: tee-pubkey.crv: expected P-256 or P-521, found \"P-384\"");
  auto direct = key;
  direct.alg = "ECDH-ES";
  EXPECT_EQ(message(direct),
            "JWE: tee-pubkey.alg: expected ECDH-ES+A256KW for an EC key, found \"ECDH-ES\"");
  auto off_curve = key;
  off_curve.y = off_curve.x;
  EXPECT_EQ(message(off_curve).rfind("JWE: tee-pubkey: P-256 public key: not ", 0), 0u)
      << message(off_curve);
  auto beyond_field = key;  // a coordinate of 2^256 - 1, past the field's prime
  beyond_field.x = to_base64url(Bytes(32, 0xff));
  EXPECT_EQ(message(beyond_field).rfind("JWE: tee-pubkey: P-256 public key: not ", 0), 0u)
      << message(beyond_field);
  auto short_x = key;
  short_x.x = to_base64url(Bytes(31, 1));
  EXPECT_EQ(message(short_x),
            "JWE: tee-pubkey: P-256 public key: expected 32-byte coordinates, found x 31 and y 32 "
            "bytes");

  const TeeKeyPair rsa = generate(Kind::kRsa3072);
  auto rsa_key = std::get<kbs::RsaTeeKey>(rsa.public_key());
  auto pkcs1 = rsa_key;
  pkcs1.alg = "RSA1_5";
  EXPECT_EQ(message(pkcs1),
            "JWE: tee-pubkey.alg: expected RSA-OAEP-256 for an RSA key, found \"RSA1_5\"");
  auto small = rsa_key;
  small.n = to_base64url(Bytes(128, 0xff));
  EXPECT_EQ(message(small),
            "JWE: tee-pubkey.n: expected a modulus of 2048 to 16384 bits, found 1024");
  // e = 1 leaves the OAEP-encoded key readable by anyone; an even e is no RSA key.
  for (const auto& [e, found] :
       {std::pair{Bytes{1}, "1"}, std::pair{Bytes{1, 0, 0}, "65536"},
        std::pair{Bytes{0, 0, 3}, "3"}, std::pair{Bytes(9, 1), "9 bytes"}}) {
    auto weak = rsa_key;
    weak.e = to_base64url(e);
    EXPECT_EQ(message(weak),
              std::string("JWE: tee-pubkey.e: expected an odd exponent from 65537 to 2^64 - 1, "
                          "found ") +
                  found);
    EXPECT_EQ(check_recipient(weak).error().message(),
              message(weak).substr(std::string("JWE: ").size()));
  }
  EXPECT_TRUE(check_recipient(rsa_key).ok());
  EXPECT_TRUE(check_recipient(key).ok());
  EXPECT_EQ(check_recipient(p384).error().message(),
            "tee-pubkey.crv: expected P-256 or P-521, found \"P-384\"");
}

// Header members that change how the plaintext is read are refused, not ignored: a KBS answer
// with "zip" would have the agent write compressed bytes out as the secret.
TEST(Jwe, CompressionCriticalExtensionsAndUnprotectedHeadersAreRefused) {
  const TeeKeyPair pair = generate(Kind::kEcP256);
  const auto jwe = encrypt(pair.public_key(), as_bytes(std::string("secret")));
  ASSERT_TRUE(jwe);
  auto with_member = [&](const char* name, const nlohmann::json& value) {
    nlohmann::json copy = *jwe;
    const Bytes header = *from_base64url(copy["protected"].get<std::string>());
    nlohmann::json members = nlohmann::json::parse(header.begin(), header.end());
    members[name] = value;
    copy["protected"] = to_base64url(as_bytes(members.dump()));
    return copy;
  };
  EXPECT_EQ(pair.decrypt(with_member("zip", "DEF")).error().message(),
            "JWE.protected.zip: expected none, found \"DEF\"");
  EXPECT_EQ(pair.decrypt(with_member("crit", {"b64"})).error().message(),
            "JWE.protected.crit: expected none, found [\"b64\"]");
  nlohmann::json unprotected = *jwe;
  unprotected["unprotected"] = {{"zip", "DEF"}};
  EXPECT_EQ(pair.decrypt(unprotected).error().message(),
            "JWE.unprotected: expected none (every header member is in \"protected\"), found "
            "object");
  const std::string secret = "secret";
  EXPECT_EQ(*pair.decrypt(*jwe), Bytes(secret.begin(), secret.end()));
}

TEST(Jwe, DecryptionRefusesAHeaderForAnotherKeyKind) {
  const TeeKeyPair ec = generate(Kind::kEcP256);
  const TeeKeyPair p521 = generate(Kind::kEcP521);
  auto jwe = encrypt(p521.public_key(), as_bytes(std::string("s")));
  ASSERT_TRUE(jwe);
  EXPECT_EQ(ec.decrypt(*jwe).error().message(),
            "JWE.protected.epk: expected an EC key on P-256, found kty \"EC\" crv \"P-521\"");
  const TeeKeyPair rsa = generate(Kind::kRsa3072);
  EXPECT_EQ(rsa.decrypt(*jwe).error().message(),
            "JWE.protected.alg: expected RSA-OAEP-256 for this RSA key, found \"ECDH-ES+A256KW\"");
}

}  // namespace
}  // namespace cloister::service::jwe
