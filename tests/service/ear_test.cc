#include "cloister/service/ear.h"

#include <gtest/gtest.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
// José's headers declare C functions without extern "C".
extern "C" {
#include <jose/jose.h>
#include <jose/openssl.h>
}

#include "cloister/common/base64.h"
#include "ear_cbor.h"
#include "support/vectors.h"

namespace cloister::service::ear {
namespace {

using attestation::CheckStatus;
using cloister::testing::read_vector;

nlohmann::json read_json(const std::filesystem::path& path) {
  const Bytes bytes = read_vector(path);
  return nlohmann::json::parse(bytes.begin(), bytes.end());
}

// veraison/ear's own claim sets and Trustee's token example: each parses, and writing it back
// gives the same JSON.
TEST(EarClaims, VectorsRoundTrip) {
  for (const char* name : {"veraison-ear/ear-claims.json", "veraison-ear/ear-claims-tv-ok.json",
                           "veraison-ear/ear-claims-extension-ok.json",
                           "veraison-ear/ear-claims-key-attestation-ok.json",
                           "trustee/as/ear-token-claims-example.json"}) {
    CLOISTER_REQUIRE_VECTOR(path, std::string("service/") + name);
    const nlohmann::json doc = read_json(path);
    auto claims = parse_claims(doc);
    ASSERT_TRUE(claims) << name << ": " << claims.error().message();
    EXPECT_EQ(to_json(*claims), doc) << name;
  }
}

TEST(EarClaims, TrustVectorVector) {
  CLOISTER_REQUIRE_VECTOR(path, "service/veraison-ear/ear-claims-tv-ok.json");
  auto claims = parse_claims(read_json(path));
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->profile, "tag:github.com,2023:veraison/ear");
  EXPECT_EQ(claims->issued_at, 1666091373);
  EXPECT_EQ(claims->verifier_developer, "Acme Inc.");
  EXPECT_EQ(claims->raw_evidence, "3q2-7w");
  const Appraisal& test = claims->submods.at("test");
  EXPECT_EQ(test.status, Tier::kAffirming);
  EXPECT_EQ(test.trust_vector[static_cast<std::size_t>(TrustClaim::kExecutables)], 3);
  EXPECT_EQ(test.trust_vector[static_cast<std::size_t>(TrustClaim::kSourcedData)], 2);
  EXPECT_EQ(test.policy_id, "https://veraison.example/policy/1/60a0068d");
}

TEST(EarClaims, TrusteeExampleIsContraindicated) {
  CLOISTER_REQUIRE_VECTOR(path, "service/trustee/as/ear-token-claims-example.json");
  auto claims = parse_claims(read_json(path));
  ASSERT_TRUE(claims);
  const Appraisal& cpu0 = claims->submods.at("cpu0");
  EXPECT_EQ(cpu0.status, Tier::kContraindicated);
  EXPECT_EQ(tier_of(*cpu0.trust_vector[static_cast<std::size_t>(TrustClaim::kHardware)]),
            Tier::kContraindicated);
  EXPECT_EQ(tier_of(*cpu0.trust_vector[static_cast<std::size_t>(TrustClaim::kConfiguration)]),
            Tier::kWarning);
  EXPECT_TRUE(cpu0.extensions.contains("ear.veraison.annotated-evidence"));
}

TEST(EarClaims, MalformedKeyAttestationIsRefused) {
  CLOISTER_REQUIRE_VECTOR(path, "service/veraison-ear/ear-claims-key-attestation-ko.json");
  auto claims = parse_claims(read_json(path));
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.error().message(),
            "EAR.submods.PARSEC_TPM.ear.veraison.key-attestation: missing member \"akpub\"");
}

TEST(EarClaims, Refusals) {
  const nlohmann::json base = {{"eat_profile", kProfile},
                               {"iat", 1},
                               {"ear.verifier-id", {{"developer", "d"}, {"build", "b"}}},
                               {"submods", {{"cpu0", {{"ear.status", "affirming"}}}}}};
  ASSERT_TRUE(parse_claims(base));
  auto error = [&](auto mutate) {
    nlohmann::json j = base;
    mutate(j);
    auto c = parse_claims(j);
    return c ? std::string("accepted") : c.error().message();
  };
  EXPECT_EQ(error([](auto& j) { j["submods"]["cpu0"]["ear.status"] = "fine"; }),
            "EAR.submods.cpu0.ear.status: expected none, affirming, warning or contraindicated, "
            "found \"fine\"");
  EXPECT_EQ(error([](auto& j) {
              j["submods"]["cpu0"]["ear.trustworthiness-vector"] = {{"hardware", 128}};
            }),
            "EAR.submods.cpu0.ear.trustworthiness-vector.hardware: expected an integer -128..127, "
            "found 128");
  EXPECT_EQ(error([](auto& j) {
              j["submods"]["cpu0"]["ear.trustworthiness-vector"] = {{"firmware", 2}};
            }),
            "EAR.submods.cpu0.ear.trustworthiness-vector: unknown trust claim \"firmware\"");
  EXPECT_EQ(error([](auto& j) { j["submods"] = nlohmann::json::object(); }),
            "EAR.submods: expected at least one appraisal, found none");
  EXPECT_EQ(error([](auto& j) { j["submods"]["cpu0"].erase("ear.status"); }),
            "EAR.submods.cpu0: missing member \"ear.status\"");
  EXPECT_EQ(error([](auto& j) { j.erase("iat"); }), "EAR: missing member \"iat\"");
  EXPECT_EQ(error([](auto& j) { j["ear.raw-evidence"] = "a+b"; }),
            "EAR.ear.raw-evidence: base64url: invalid character 0x2b at position 1");
}

TEST(EarTiers, Ranges) {
  EXPECT_EQ(tier_of(0), Tier::kNone);
  EXPECT_EQ(tier_of(-1), Tier::kNone);
  EXPECT_EQ(tier_of(2), Tier::kAffirming);
  EXPECT_EQ(tier_of(-32), Tier::kAffirming);
  EXPECT_EQ(tier_of(31), Tier::kAffirming);
  EXPECT_EQ(tier_of(32), Tier::kWarning);
  EXPECT_EQ(tier_of(-33), Tier::kWarning);
  EXPECT_EQ(tier_of(95), Tier::kWarning);
  EXPECT_EQ(tier_of(96), Tier::kContraindicated);
  EXPECT_EQ(tier_of(-97), Tier::kContraindicated);
  EXPECT_EQ(tier_of(127), Tier::kContraindicated);
}

sdk::Verdict snp_verdict(std::initializer_list<std::pair<const char*, CheckStatus>> overrides) {
  sdk::Verdict v;
  v.tee = "snp";
  for (const char* name : {"snp.report.format", "snp.product", "snp.vek", "snp.chain.ark",
                           "snp.chain.vek", "snp.signature", "snp.vek.tcb", "policy.measurement",
                           "policy.guest.debug", "policy.vmpl", "policy.tcb.reported"}) {
    CheckStatus status = CheckStatus::kPass;
    for (const auto& [n, s] : overrides)
      if (std::string_view(n) == name) status = s;
    v.checks.add({name, status, "e", "f", "d"});
  }
  v.checks.skip("snp.revocation", "no CRL");
  return v;
}

std::optional<std::int8_t> claim(const Appraisal& a, TrustClaim c) {
  return a.trust_vector[static_cast<std::size_t>(c)];
}

TEST(EarAppraisal, APassingVerdictIsAffirming) {
  const Appraisal a = appraise(snp_verdict({}), "sha256:abcd");
  EXPECT_EQ(a.status, Tier::kAffirming);
  EXPECT_EQ(a.policy_id, "sha256:abcd");
  EXPECT_EQ(claim(a, TrustClaim::kInstanceIdentity), 2);
  EXPECT_EQ(claim(a, TrustClaim::kHardware), 2);
  EXPECT_EQ(claim(a, TrustClaim::kExecutables), 3);
  EXPECT_EQ(claim(a, TrustClaim::kConfiguration), 2);
  EXPECT_EQ(claim(a, TrustClaim::kRuntimeOpaque), 2);
  EXPECT_FALSE(claim(a, TrustClaim::kFileSystem));
  EXPECT_FALSE(claim(a, TrustClaim::kStorageOpaque));
  EXPECT_FALSE(claim(a, TrustClaim::kSourcedData));
}

TEST(EarAppraisal, EachFailureLandsInItsClaim) {
  const Appraisal measurement =
      appraise(snp_verdict({{"policy.measurement", CheckStatus::kFail}}), "p");
  EXPECT_EQ(claim(measurement, TrustClaim::kExecutables), 33);
  EXPECT_EQ(measurement.status, Tier::kWarning);

  const Appraisal debug = appraise(snp_verdict({{"policy.guest.debug", CheckStatus::kFail}}), "p");
  EXPECT_EQ(claim(debug, TrustClaim::kConfiguration), 96);
  EXPECT_EQ(claim(debug, TrustClaim::kRuntimeOpaque), 96);
  EXPECT_EQ(debug.status, Tier::kContraindicated);

  const Appraisal signature = appraise(snp_verdict({{"snp.signature", CheckStatus::kFail}}), "p");
  EXPECT_EQ(claim(signature, TrustClaim::kInstanceIdentity), 99);
  EXPECT_FALSE(claim(signature, TrustClaim::kRuntimeOpaque));
  EXPECT_EQ(signature.status, Tier::kContraindicated);

  const Appraisal tcb = appraise(snp_verdict({{"policy.tcb.reported", CheckStatus::kFail}}), "p");
  EXPECT_EQ(claim(tcb, TrustClaim::kHardware), 32);
  EXPECT_EQ(tcb.status, Tier::kWarning);

  // What the guest booted and ran, as RTMRs, dstack runtime events and vTPM PCRs pin it.
  for (const char* name :
       {"policy.tdx.rtmr2", "policy.tdx.runtime_event.compose-hash", "policy.azure.pcr7"}) {
    sdk::Verdict runtime = snp_verdict({});
    runtime.checks.add({name, CheckStatus::kFail, "e", "f", "d"});
    EXPECT_EQ(claim(appraise(runtime, "p"), TrustClaim::kExecutables), 33) << name;
  }

  const Appraisal vmpl = appraise(snp_verdict({{"policy.vmpl", CheckStatus::kFail}}), "p");
  EXPECT_EQ(claim(vmpl, TrustClaim::kConfiguration), 32);
  EXPECT_EQ(vmpl.status, Tier::kWarning);

  sdk::Verdict simulated = snp_verdict({});
  simulated.trust_anchor = sdk::TrustAnchor{"CN=ARK-Genoa", "00", true};
  const Appraisal sim = appraise(simulated, "p");
  EXPECT_EQ(claim(sim, TrustClaim::kHardware), 32);
  EXPECT_EQ(sim.status, Tier::kWarning);
}

Claims sample_claims(UnixTime now) {
  Claims c;
  c.issued_at = now;
  c.expires_at = now + 300;
  c.verifier_developer = "https://cloister.invalid";
  c.verifier_build = "cloister 0.1.0";
  c.submods["cpu0"] = appraise(snp_verdict({}), "sha256:00");
  c.nonce = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  return c;
}

// José verifying our token: an ES384 implementation independent of ours.
bool jose_verifies(std::string_view token, const nlohmann::json& jwk) {
  const std::size_t a = token.find('.');
  const std::size_t b = token.find('.', a + 1);
  const nlohmann::json flattened = {{"protected", std::string(token.substr(0, a))},
                                    {"payload", std::string(token.substr(a + 1, b - a - 1))},
                                    {"signature", std::string(token.substr(b + 1))}};
  json_t* jws = json_loads(flattened.dump().c_str(), 0, nullptr);
  json_t* key = json_loads(jwk.dump().c_str(), 0, nullptr);
  const bool ok = jose_jws_ver(nullptr, jws, nullptr, key, false);
  json_decref(jws);
  json_decref(key);
  return ok;
}

TEST(EarJwt, SignVerifyAndJose) {
  auto signer = Signer::generate();
  ASSERT_TRUE(signer) << signer.error().message();
  const UnixTime now = 1760000000;
  const Claims claims = sample_claims(now);
  auto token = signer->sign(claims);
  ASSERT_TRUE(token) << token.error().message();
  const nlohmann::json set = jwks({&*signer});
  ASSERT_EQ(set["keys"].size(), 1u);
  EXPECT_EQ(set["keys"][0]["kid"], signer->kid());
  EXPECT_EQ(set["keys"][0]["alg"], "ES384");
  EXPECT_EQ(from_base64url(signer->kid())->size(), 32u);

  auto verified = verify(*token, set, now + 10);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(*verified, claims);
  EXPECT_TRUE(jose_verifies(*token, set["keys"][0]));

  const Bytes header = *from_base64url(token->substr(0, token->find('.')));
  EXPECT_EQ(nlohmann::json::parse(header.begin(), header.end()),
            (nlohmann::json{{"alg", "ES384"}, {"kid", signer->kid()}, {"typ", "JWT"}}));
}

TEST(EarJwt, Refusals) {
  auto signer = Signer::generate();
  auto other = Signer::generate();
  ASSERT_TRUE(signer && other);
  const UnixTime now = 1760000000;
  const std::string token = *signer->sign(sample_claims(now));
  const nlohmann::json set = jwks({&*signer});

  // A flipped signature byte.
  std::string flipped = token;
  const std::size_t sig_at = token.rfind('.') + 1;
  Bytes sig = *from_base64url(token.substr(sig_at));
  sig[10] ^= 0x01;
  flipped = token.substr(0, sig_at) + to_base64url(sig);
  EXPECT_EQ(verify(flipped, set, now).error().message(),
            "EAR signature: does not verify with key " + signer->kid());
  EXPECT_FALSE(jose_verifies(flipped, set["keys"][0]));

  // Expiry enforced (with the leeway), and a key outside the set.
  EXPECT_TRUE(verify(token, set, now + 300 + 59));
  auto expired = verify(token, set, now + 360);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().message().rfind("EAR.exp: expired at 2025-10-09T08:58:20Z", 0), 0u)
      << expired.error().message();
  EXPECT_EQ(verify(token, jwks({&*other}), now).error().message(),
            "EAR header.kid: \"" + signer->kid() + "\" is not in the JWKS");
  EXPECT_EQ(
      verify(token, set, now - 120).error().message().rfind("EAR.iat: issued in the future", 0),
      0u);

  // alg none, or a payload swapped under a valid signature.
  const std::string none =
      to_base64url(as_bytes(R"({"alg":"none","kid":")" + signer->kid() + R"("})")) +
      token.substr(token.find('.'));
  EXPECT_EQ(verify(none, set, now).error().message(),
            "EAR header.alg: expected ES384, found \"none\"");
  // A critical extension this reader does not know (RFC 7515 §4.1.11).
  const std::string crit =
      to_base64url(as_bytes(R"({"alg":"ES384","crit":["exp"],"kid":")" + signer->kid() + R"("})")) +
      token.substr(token.find('.'));
  EXPECT_EQ(verify(crit, set, now).error().message(),
            "EAR header.crit: expected none, found [\"exp\"]");
  Claims changed = sample_claims(now);
  changed.submods["cpu0"].status = Tier::kAffirming;
  changed.nonce = "another";
  const std::string other_payload = to_base64url(as_bytes(to_json(changed).dump()));
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = token.rfind('.');
  EXPECT_FALSE(verify(token.substr(0, d1 + 1) + other_payload + token.substr(d2), set, now));

  // Tokens always expire.
  Claims no_exp = sample_claims(now);
  no_exp.expires_at.reset();
  EXPECT_EQ(signer->sign(no_exp).error().message(), "EAR: refusing to sign claims without exp");
}

// A KeySet imports a JWKS once and verifies tokens of each of its keys; a key it cannot import
// is refused only when a token names it, with the reason.
TEST(EarJwt, AKeySetVerifiesManyTokens) {
  auto a = Signer::generate();
  auto b = Signer::generate();
  auto outsider = Signer::generate();
  ASSERT_TRUE(a && b && outsider);
  const UnixTime now = 1760000000;
  nlohmann::json set = jwks({&*a, &*b});
  set["keys"].push_back({{"kty", "EC"}, {"crv", "P-256"}, {"kid", "p256"}, {"x", ""}, {"y", ""}});
  const KeySet keys(set);
  for (const Signer* s : {&*a, &*b}) {
    const std::string token = *s->sign(sample_claims(now));
    auto verified = verify(token, keys, now);
    ASSERT_TRUE(verified) << verified.error().message();
    EXPECT_EQ(*verified, sample_claims(now));
    auto cwt = verify_cwt(*s->sign_cwt(sample_claims(now)), keys, now);
    ASSERT_TRUE(cwt) << cwt.error().message();
  }
  EXPECT_EQ(verify(*outsider->sign(sample_claims(now)), keys, now).error().message(),
            "EAR header.kid: \"" + outsider->kid() + "\" is not in the JWKS");
  const std::string p256_token =
      to_base64url(as_bytes(R"({"alg":"ES384","kid":"p256"})")) + ".e30." + to_base64url(Bytes(96));
  EXPECT_EQ(verify(p256_token, keys, now).error().message(),
            "JWKS key p256: expected an EC P-384 key");
}

}  // namespace
}  // namespace cloister::service::ear

namespace cloister::service::ear {
namespace {

// The Sig_structure of RFC 9052 §4.4 written out by hand for an ES384 COSE_Sign1, verified with
// OpenSSL and José's JWK import: a check of our COSE layout that does not use our encoder.
bool independently_verifies(ByteView payload, ByteView raw_signature, const nlohmann::json& jwk) {
  Bytes sig_structure = {0x84, 0x6a};  // array(4), text(10)
  for (char c : std::string_view("Signature1"))
    sig_structure.push_back(static_cast<std::uint8_t>(c));
  sig_structure.insert(sig_structure.end(), {0x44, 0xa1, 0x01, 0x38, 0x22, 0x40});
  if (payload.size() < 24) {
    sig_structure.push_back(static_cast<std::uint8_t>(0x40 + payload.size()));
  } else if (payload.size() < 256) {
    sig_structure.insert(sig_structure.end(), {0x58, static_cast<std::uint8_t>(payload.size())});
  } else {
    sig_structure.insert(sig_structure.end(), {0x59, static_cast<std::uint8_t>(payload.size() >> 8),
                                               static_cast<std::uint8_t>(payload.size())});
  }
  sig_structure.insert(sig_structure.end(), payload.begin(), payload.end());

  json_t* key_json = json_loads(jwk.dump().c_str(), 0, nullptr);
  EVP_PKEY* key = jose_openssl_jwk_to_EVP_PKEY(nullptr, key_json);
  json_decref(key_json);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(raw_signature.data(), 48, nullptr),
                 BN_bin2bn(raw_signature.data() + 48, 48, nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = key && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha384(), nullptr, key) == 1 &&
                  EVP_DigestVerify(ctx, der, static_cast<std::size_t>(der_len),
                                   sig_structure.data(), sig_structure.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  EVP_PKEY_free(key);
  return ok;
}

TEST(EarCwt, SignVerifyAndTheCoseLayout) {
  auto signer = Signer::generate();
  ASSERT_TRUE(signer);
  const UnixTime now = 1760000000;
  Claims claims = sample_claims(now);
  claims.raw_evidence = "3q2-7w";
  claims.issuer = "cloister-attestd";
  auto cwt = signer->sign_cwt(claims);
  ASSERT_TRUE(cwt) << cwt.error().message();
  const nlohmann::json set = jwks({&*signer});
  auto verified = verify_cwt(*cwt, set, now);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(*verified, claims);

  // d2 84: tag 18, array(4); 44 a1 01 38 22: the protected header {1: -35}.
  ASSERT_GT(cwt->size(), 10u);
  EXPECT_EQ(Bytes(cwt->begin(), cwt->begin() + 7),
            (Bytes{0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22}));
  // The payload bstr follows the unprotected map {4: kid(43 bytes)}: a1 04 58 2b <kid>.
  const std::size_t kid_at = 7;
  EXPECT_EQ(Bytes(cwt->begin() + kid_at, cwt->begin() + kid_at + 4),
            (Bytes{0xa1, 0x04, 0x58, 0x2b}));
  std::size_t at = kid_at + 4 + signer->kid().size();
  // The payload bstr, with a 1- or 2-byte length.
  ASSERT_TRUE((*cwt)[at] == 0x58 || (*cwt)[at] == 0x59);
  const std::size_t length_bytes = (*cwt)[at] == 0x58 ? 1 : 2;
  const std::size_t payload_size =
      length_bytes == 1 ? (*cwt)[at + 1] : (((*cwt)[at + 1] << 8) | (*cwt)[at + 2]);
  const ByteView payload(cwt->data() + at + 1 + length_bytes, payload_size);
  at += 1 + length_bytes + payload_size;
  ASSERT_EQ((*cwt)[at], 0x58);
  ASSERT_EQ((*cwt)[at + 1], 96);
  const ByteView signature(cwt->data() + at + 2, 96);
  EXPECT_EQ(at + 2 + 96, cwt->size());
  EXPECT_TRUE(independently_verifies(payload, signature, set["keys"][0]));
  // The payload is a deterministic map whose first keys are iss (1), exp (4), iat (6).
  EXPECT_EQ(payload[0], 0xa8);  // map(8): iss, exp, iat, nonce, profile, submods, raw, verifier
  EXPECT_EQ(payload[1], 0x01);
}

TEST(EarCwt, Refusals) {
  auto signer = Signer::generate();
  ASSERT_TRUE(signer);
  const UnixTime now = 1760000000;
  const Bytes cwt = *signer->sign_cwt(sample_claims(now));
  const nlohmann::json set = jwks({&*signer});
  Bytes flipped = cwt;
  flipped[flipped.size() - 5] ^= 0x01;
  EXPECT_EQ(verify_cwt(flipped, set, now).error().message(),
            "COSE_Sign1 signature: does not verify with key " + signer->kid());
  EXPECT_EQ(verify_cwt(cwt, set, now + 400).error().message().rfind("EAR.exp: expired at", 0), 0u);
  Bytes untagged(cwt.begin() + 1, cwt.end());
  EXPECT_EQ(verify_cwt(untagged, set, now).error().message(), "COSE_Sign1: expected tag 18");
  Bytes other_alg = cwt;
  other_alg[6] = 0x26;  // -7 (ES256)
  EXPECT_EQ(verify_cwt(other_alg, set, now).error().message(),
            "COSE_Sign1.protected: expected exactly {1: -35} (ES384)");
  EXPECT_FALSE(verify_cwt(Bytes(cwt.begin(), cwt.end() - 1), set, now));
  // A map header declaring 0x76657260 pairs, which libcbor would allocate up front (fuzz_ear).
  EXPECT_EQ(verify_cwt(Bytes{0xd2, 0xba, 0x76, 0x65, 0x72, 0x60}, set, now).error().message(),
            "COSE_Sign1: an array or map declares more elements than the input holds");
  Claims with_key_attestation = sample_claims(now);
  with_key_attestation.submods["cpu0"].key_attestation_akpub = "AAAA";
  EXPECT_EQ(signer->sign_cwt(with_key_attestation).error().message(),
            "EAR CWT: submod cpu0 has a key attestation, which the CBOR form does not carry");
}

// The service's tokens carry the annotated evidence as a JSON extension of the submod; the CWT
// form carries it under its name as a text key, and it comes back unchanged.
TEST(EarCwt, ExtensionsTravelAsTextKeys) {
  auto signer = Signer::generate();
  ASSERT_TRUE(signer);
  const UnixTime now = 1760000000;
  Claims claims = sample_claims(now);
  claims.submods["cpu0"].extensions["ear.veraison.annotated-evidence"] = {
      {"snp", {{"measurement", "5a7c"}, {"vmpl", 0}, {"policy", {{"debug", false}}}}},
      {"runtime_data_claims", {{"nonce", "AAEC"}, {"tee-pubkey", {{"kty", "EC"}}}}}};
  claims.extensions["x-list"] = {
      1, -2, 3.5, true, nullptr, "\u00e9t\u00e9", nlohmann::json::array()};
  const auto cwt = signer->sign_cwt(claims);
  ASSERT_TRUE(cwt) << cwt.error().message();
  const auto verified = verify_cwt(*cwt, jwks({&*signer}), now);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(*verified, claims);

  // {"x": [1, -2, true, null]} at the top level: a text key after the integer keys, its value
  // an array of CBOR's own integers and simple values.
  Claims small = sample_claims(now);
  small.submods["cpu0"].extensions = nlohmann::json::object();
  small.extensions["x"] = {1, -2, true, nullptr};
  const auto payload = cbor::claims_to_cbor(small);
  ASSERT_TRUE(payload) << payload.error().message();
  const Bytes tail{0x61, 'x', 0x84, 0x01, 0x21, 0xf5, 0xf6};
  ASSERT_GT(payload->size(), tail.size());
  EXPECT_EQ(Bytes(payload->end() - static_cast<std::ptrdiff_t>(tail.size()), payload->end()), tail);
}

TEST(EarCwt, TextKeysThatCannotBeExtensionsAreRefused) {
  const UnixTime now = 1760000000;
  const Bytes base = *cbor::claims_to_cbor(sample_claims(now));
  ASSERT_GE(base[0], 0xa1);
  ASSERT_LE(base[0], 0xb6);
  // Appends one pair to the top-level map (its header is one byte for up to 23 pairs).
  auto with_pair = [&](const Bytes& pair) {
    Bytes out = base;
    ++out[0];
    out.insert(out.end(), pair.begin(), pair.end());
    return out;
  };
  EXPECT_EQ(cbor::claims_from_cbor(with_pair({0x63, 'i', 'a', 't', 0x01})).error().message(),
            "EAR CWT payload: text key \"iat\" names a claim the CBOR form carries under its "
            "integer key");
  EXPECT_EQ(cbor::claims_from_cbor(with_pair({0x61, 'x', 0x42, 0x00, 0x01})).error().message(),
            "EAR CWT payload/x: a byte string or tag, which JSON extensions cannot carry");
  // Invalid UTF-8 in a text string: libcbor's decoder refuses the whole payload.
  EXPECT_EQ(cbor::claims_from_cbor(with_pair({0x61, 'x', 0x62, 0xc3, 0x28})).error().message(),
            "EAR CWT payload: not one CBOR item");
  EXPECT_EQ(cbor::claims_from_cbor(with_pair({0x61, 'x', 0xa1, 0x01, 0x02})).error().message(),
            "EAR CWT payload/x: a map key: expected a definite-length text string");
  EXPECT_EQ(cbor::claims_from_cbor(with_pair({0x61, 'x', 0xf7})).error().message(),
            "EAR CWT payload/x: a simple value other than null, true and false");
}

}  // namespace
}  // namespace cloister::service::ear
