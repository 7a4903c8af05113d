#include "cloister/service/kbs.h"

#include <gtest/gtest.h>

#include "cloister/common/base64.h"
#include "cloister/service/kbs_client.h"
#include "cloister/service/kbs_error.h"
#include "support/http_server.h"
#include "support/vectors.h"

namespace cloister::service::kbs {
namespace {

using cloister::testing::read_vector;

std::string read_text(const std::filesystem::path& path) {
  const Bytes bytes = read_vector(path);
  return std::string(bytes.begin(), bytes.end());
}

constexpr std::string_view kGuestComponentsRequest =
    R"({"version":"0.4.0","tee":"snp","extra-params":{"supported-hash-algorithms":)"
    R"(["sha256","sha384","sha512","sm3"]}})";

TEST(KbsRequest, ParsesWhatGuestComponentsSends) {
  auto request = parse_request(kGuestComponentsRequest);
  ASSERT_TRUE(request) << request.error().message();
  EXPECT_EQ(request->version, "0.4.0");
  EXPECT_EQ(request->tee, Tee::kSnp);
  EXPECT_EQ(request->extra_params["supported-hash-algorithms"].size(), 4u);
  EXPECT_EQ(to_json(*request), nlohmann::json::parse(kGuestComponentsRequest));
}

// Trustee's own sample bodies of older protocol versions: refused by default, with the
// version in the words the client sees; accepted when the operator lets that version in.
TEST(KbsRequest, LegacyVersionsRefusedByDefaultAndAcceptedOnRequest) {
  CLOISTER_REQUIRE_VECTOR(tdx, "service/trustee/kbs/legacy-request-0.1.0-tdx.json");
  CLOISTER_REQUIRE_VECTOR(cca, "service/trustee/kbs/legacy-request-0.2.0-cca.json");
  auto refused = parse_request(read_text(tdx));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(),
            "KBS client protocol version mismatch: expected 0.4.0, found 0.1.0");
  const KbsError error = auth_failed(refused.error());
  EXPECT_EQ(error.status(), 401);
  EXPECT_EQ(error.body(),
            (nlohmann::json{{"type",
                             "https://github.com/confidential-containers/kbs/errors/"
                             "AttestationError"},
                            {"detail",
                             "Attestation error: RCAR handshake Auth failed: KBS client protocol "
                             "version mismatch: expected 0.4.0, found 0.1.0"}}));
  auto refused_cca = parse_request(read_text(cca));
  ASSERT_FALSE(refused_cca);
  EXPECT_NE(refused_cca.error().message().find("found 0.2.0"), std::string::npos);

  VersionPolicy lenient;
  lenient.accepted.insert("0.1.0");
  lenient.accepted.insert("0.2.0");
  auto old_tdx = parse_request(read_text(tdx), lenient);
  ASSERT_TRUE(old_tdx) << old_tdx.error().message();
  EXPECT_EQ(old_tdx->tee, Tee::kTdx);
  EXPECT_EQ(old_tdx->extra_params, "foo");
  auto old_cca = parse_request(read_text(cca), lenient);
  ASSERT_TRUE(old_cca) << old_cca.error().message();
  EXPECT_EQ(old_cca->tee, Tee::kCca);
  EXPECT_EQ(old_cca->extra_params, "");
  VersionPolicy two;
  two.accepted.insert("0.3.0");
  EXPECT_EQ(parse_request(read_text(tdx), two).error().message(),
            "KBS client protocol version mismatch: expected one of 0.3.0, 0.4.0, found 0.1.0");
}

TEST(KbsRequest, StrictMembers) {
  EXPECT_EQ(parse_request(R"({"version":"0.4.0","tee":"snp"})").error().message(),
            "Request: missing member \"extra-params\"");
  EXPECT_EQ(parse_request(R"({"version":"0.4.0","tee":"snp","extra_params":""})").error().message(),
            "Request: missing member \"extra-params\"");
  EXPECT_EQ(parse_request(R"({"version":4,"tee":"snp","extra-params":""})").error().message(),
            "Request.version: expected a string, found number");
  EXPECT_EQ(parse_request(R"({"version":"0.4.0","tee":"SNP","extra-params":""})")
                .error()
                .message()
                .rfind("Request: tee: expected one of az-snp-vtpm, ", 0),
            0u);
  EXPECT_EQ(parse_request(R"({"version":"0.4.0","version":"0.4.0","tee":"snp","extra-params":""})")
                .error()
                .message(),
            "Request: duplicate key \"version\" at /version");
  EXPECT_EQ(parse_request("[]").error().message(), "Request: expected an object, found array");
  EXPECT_EQ(parse_request("{").error().message().rfind("Request: not valid JSON (parse error", 0),
            0u);
  EXPECT_EQ(parse_request(std::string(100, '[') + std::string(100, ']'))
                .error()
                .message()
                .rfind("Request: nesting deeper than 64 levels at /0/0/", 0),
            0u);
  // Unknown members are ignored, as serde ignores them.
  EXPECT_TRUE(parse_request(R"({"version":"0.4.0","tee":"tdx","extra-params":"","x":1})"));
}

TEST(KbsChallenge, NonceIs32RandomBytesInPaddedBase64) {
  auto a = make_nonce();
  auto b = make_nonce();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 44u);
  EXPECT_EQ(a->back(), '=');
  EXPECT_EQ(from_base64(*a)->size(), 32u);
  EXPECT_NE(*a, *b);
  Challenge challenge{*a};
  EXPECT_EQ(to_json(challenge).dump(), R"({"extra-params":"","nonce":")" + *a + R"("})");
  auto parsed = parse_challenge(to_json(challenge).dump());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->nonce, *a);
  EXPECT_EQ(*parsed->hash_algorithm(), HashAlgorithm::kSha384);
}

TEST(KbsChallenge, SelectedHashAlgorithm) {
  auto se = parse_challenge(R"({"nonce":"n","extra-params":{"selected-hash-algorithm":"sha512"}})");
  ASSERT_TRUE(se);
  EXPECT_EQ(*se->hash_algorithm(), HashAlgorithm::kSha512);
  auto sm3 = parse_challenge(R"({"nonce":"n","extra-params":{"selected-hash-algorithm":"sm3"}})");
  ASSERT_TRUE(sm3);
  EXPECT_EQ(sm3->hash_algorithm().error().message(),
            "Challenge.extra-params: hash algorithm: expected sha256, sha384 or sha512, found "
            "\"sm3\"");
}

constexpr std::string_view kAttestation = R"({
  "init-data": {"format": "toml", "body": "version = \"0.1.0\"\n"},
  "runtime-data": {
    "nonce": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "tee-pubkey": {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
                   "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                   "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM", "kid": "dropped"}
  },
  "tee-evidence": {"primary_evidence": {"quote": "AA==", "cc_eventlog": null},
                   "additional_evidence": ""}
})";

TEST(KbsAttestation, ParsesEveryMember) {
  auto a = parse_attestation(kAttestation);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(a->init_data);
  EXPECT_EQ(a->init_data->format, "toml");
  EXPECT_EQ(a->init_data->body, "version = \"0.1.0\"\n");
  EXPECT_EQ(a->nonce, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  const auto& key = std::get<EcTeeKey>(a->tee_pubkey);
  EXPECT_EQ(key.crv, "P-256");
  EXPECT_EQ(key.x, "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4");
  EXPECT_EQ(a->primary_evidence["quote"], "AA==");
  EXPECT_EQ(a->additional_evidence, "");
  // Round trip through the wire form (without the dropped JWK member).
  auto again = parse_attestation(to_json(*a).dump());
  ASSERT_TRUE(again);
  EXPECT_EQ(to_json(*again), to_json(*a));
  EXPECT_FALSE(to_json(*a)["runtime-data"]["tee-pubkey"].contains("kid"));
}

TEST(KbsAttestation, InitDataNullOrAbsent) {
  auto j = nlohmann::json::parse(kAttestation);
  j["init-data"] = nullptr;
  auto with_null = parse_attestation(j.dump());
  ASSERT_TRUE(with_null);
  EXPECT_FALSE(with_null->init_data);
  EXPECT_TRUE(to_json(*with_null)["init-data"].is_null());
  j.erase("init-data");
  auto absent = parse_attestation(j.dump());
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->init_data);
}

TEST(KbsAttestation, RsaKeyAndStrictMembers) {
  auto j = nlohmann::json::parse(kAttestation);
  j["runtime-data"]["tee-pubkey"] = {
      {"kty", "RSA"}, {"alg", "RSA-OAEP-256"}, {"n", "AQAB"}, {"e", "AQAB"}};
  auto rsa = parse_attestation(j.dump());
  ASSERT_TRUE(rsa) << rsa.error().message();
  EXPECT_EQ(std::get<RsaTeeKey>(rsa->tee_pubkey).alg, "RSA-OAEP-256");

  auto expect_error = [](nlohmann::json doc, const std::string& message) {
    auto parsed = parse_attestation(doc.dump());
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().message(), message);
  };
  auto base = nlohmann::json::parse(kAttestation);
  auto d = base;
  d["runtime-data"]["tee-pubkey"]["kty"] = "OKP";
  expect_error(d,
               "Attestation.runtime-data: tee-pubkey.kty: expected \"EC\" or \"RSA\", found "
               "\"OKP\"");
  d = base;
  d["runtime-data"]["tee-pubkey"].erase("y");
  expect_error(d, "Attestation.runtime-data: tee-pubkey: missing member \"y\"");
  d = base;
  d["tee-evidence"]["additional_evidence"] = nlohmann::json::object();
  expect_error(d, "Attestation.tee-evidence.additional_evidence: expected a string, found object");
  d = base;
  d["tee-evidence"]["additional-evidence"] = d["tee-evidence"]["additional_evidence"];
  d["tee-evidence"].erase("additional_evidence");
  expect_error(d, "Attestation.tee-evidence: missing member \"additional_evidence\"");
  d = base;
  d["runtime_data"] = d["runtime-data"];
  d.erase("runtime-data");
  expect_error(d, "Attestation: missing member \"runtime-data\"");
  d = base;
  d["init-data"] = "toml";
  expect_error(d, "Attestation.init-data: expected an object, found string");
}

TEST(KbsErrors, StatusCodesAndTypes) {
  EXPECT_EQ(invalid_request_path("/kbs/v0/nope").status(), 404);
  EXPECT_EQ(invalid_request_path("/kbs/v0/nope").detail(), "Request path /kbs/v0/nope is invalid");
  EXPECT_EQ(KbsError(ErrorKind::kPluginNotFound, "Plugin x not found").status(), 404);
  EXPECT_EQ(token_not_found().status(), 401);
  EXPECT_EQ(token_not_found().type(),
            "https://github.com/confidential-containers/kbs/errors/TokenNotFound");
  EXPECT_EQ(policy_deny("ear.status is contraindicated").status(), 401);
  EXPECT_EQ(attest_failed(Error("nonce mismatch")).detail(),
            "Attestation error: RCAR handshake Attest failed: nonce mismatch");
  const KbsError big = payload_too_large(kMaxRequestBodySize + 1);
  EXPECT_EQ(big.status(), 413);
  EXPECT_EQ(big.detail(), "request body is 2097153 bytes, above the limit of 2097152");
  for (auto kind : {ErrorKind::kPolicyDeny, ErrorKind::kTokenVerifierError, ErrorKind::kSerdeError,
                    ErrorKind::kJweError, ErrorKind::kPluginInternalError,
                    ErrorKind::kAdminAuthAccess, ErrorKind::kAttestationError}) {
    EXPECT_EQ(KbsError(kind, "x").status(), 401) << to_string(kind);
  }
}

// The client refuses a KBS the host could impersonate: plain http (unless asked for, in tests)
// and a CA file with an http:// URL (it would verify nothing).
TEST(KbsClientUrl, OnlyHttpsUnlessPlainHttpIsAskedFor) {
  auto error_of = [](KbsClientOptions o) {
    auto client = KbsClient::create(std::move(o));
    return client ? std::string("created") : client.error().message();
  };
  KbsClientOptions o;
  o.url = "http://127.0.0.1:8080";
  EXPECT_EQ(error_of(o),
            "KBS URL http://127.0.0.1:8080: expected https://HOST:PORT (over plain http the host "
            "reads the TEE key and can answer with a secret of its choosing; allow http for "
            "tests only)");
  o.url = "127.0.0.1:8080";
  EXPECT_EQ(error_of(o), "KBS URL 127.0.0.1:8080: expected https://HOST:PORT");
  o.url = "http://127.0.0.1:8080";
  o.allow_http = true;
  EXPECT_EQ(error_of(o), "created");
  o.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  EXPECT_EQ(error_of(o),
            "KBS URL http://127.0.0.1:8080: a CA file to verify the KBS with needs https://");
  o.url = "https://127.0.0.1:8080";
  EXPECT_EQ(error_of(o), "created");
}

// A KBS error body whose members are not strings, or that carries control bytes, is reported,
// not thrown or echoed raw.
TEST(KbsClientUrl, AHostileErrorBodyIsReportedSafely) {
  cloister::testing::LoopbackHttpServer server;
  const std::string body = "{\"type\": 1, \"detail\": \"\\u001b[2Jcleared\"}";
  server.on("/kbs/v0/auth", {{401, Bytes(body.begin(), body.end()), ""}});
  KbsClientOptions o;
  o.url = server.base_url();
  o.allow_http = true;
  auto client = KbsClient::create(o);
  ASSERT_TRUE(client) << client.error().message();
  const Status attested = client->attest(
      [](const ReportData&) -> Result<nlohmann::json> { return nlohmann::json::object(); });
  ASSERT_FALSE(attested.ok());
  EXPECT_EQ(attested.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(attested.error().message(), "KBS auth: HTTP 401 : ?[2Jcleared");
}

}  // namespace
}  // namespace cloister::service::kbs
