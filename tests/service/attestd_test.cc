// The attestation service's request handler end to end, in process: a simulated SEV-SNP guest's
// evidence bound to a fresh challenge and an ephemeral TEE key gets a token and then its secret;
// every way of getting it wrong gets Trustee's status, an error naming the failed check, an
// audit record, and no secret.
#include "cloister/service/attestd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cloister/attestation/sim/snp_firmware.h"
#include "cloister/common/base64.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/service/evidence.h"
#include "cloister/service/jwe.h"
#include "cloister/service/pg_store.h"
#include "cloister/service/report_data.h"
#include "observed_store.h"
#include "sim_guest.h"
#include "support/command.h"
#include "support/services.h"
#include "support/vectors.h"

namespace cloister::service {
namespace {

namespace fs = std::filesystem;
namespace sim = attestation::sim;
using namespace cloister::service::testing;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr UnixTime kStart = 1'800'000'000;

http::Request request(std::string method, std::string path, std::string body = {}) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  return r;
}

std::string cookie_of(const http::Response& r) {
  const auto start = r.extra_headers.find("kbs-session-id=");
  if (start == std::string::npos) return {};
  const auto end = r.extra_headers.find(';', start);
  return r.extra_headers.substr(start, end - start);
}

class AttestdTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cloister-attestd-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    auto loaded = load_or_create_keys(dir_);
    ASSERT_TRUE(loaded) << loaded.error().message();
    ASSERT_TRUE(loaded->new_admin_key);
    admin_key_ = *loaded->new_admin_key;
    if (GetParam() == "postgres") {
      // One server for the whole binary; a fresh database for each test.
      static const auto pg = cloister::testing::PostgresServer::start();
      if (!pg) GTEST_SKIP() << pg.error().message();
      static int databases = 0;
      const std::string name = "attestd_" + std::to_string(++databases);
      ASSERT_TRUE((*pg)->create_database(name));
      store_ = std::make_shared<ObservedStore>(
          std::shared_ptr<Store>(open_postgres_store((*pg)->conninfo(name)).value()));
    } else {
      store_ = std::make_shared<ObservedStore>(
          std::shared_ptr<Store>(open_sqlite_store(dir_ / "state.db").value()));
    }
    ServiceOptions options;
    options.verifier.trust_roots.push_back(genoa().amd().ark().cert);
    options.clock = [this] { return now_; };
    service_ = std::make_unique<AttestationService>(store_, std::move(loaded->keys), options);
    ASSERT_EQ(admin("PUT", "/admin/v0/reference-values/default", reference_values(0x4d)).status,
              200);
    put_resource("tenant/key/disk", "disk passphrase",
                 R"({"accept_status":["affirming","warning"]})");
  }
  void TearDown() override { fs::remove_all(dir_); }

  http::Response admin(std::string method, std::string path, std::string body = {},
                       std::string key = {}) {
    auto r = request(std::move(method), std::move(path), std::move(body));
    r.headers["authorization"] = "Bearer " + (key.empty() ? admin_key_ : key);
    return service_->handle(r, "admin-test");
  }

  void put_resource(const std::string& path, const std::string& value, const std::string& policy) {
    const auto r =
        admin("PUT", "/admin/v0/resources/" + path,
              R"({"value":")" + to_base64(as_bytes(value)) + R"(","policy":)" + policy + "}");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  // POST /kbs/v0/auth; returns the session cookie and the nonce.
  std::pair<std::string, std::string> auth() {
    const auto r = service_->handle(
        request("POST", "/kbs/v0/auth", R"({"version":"0.4.0","tee":"snp","extra-params":{}})"),
        "guest");
    EXPECT_EQ(r.status, 200) << r.body;
    return {cookie_of(r), nlohmann::json::parse(r.body).at("nonce").get<std::string>()};
  }

  // The attest body for a simulated guest launched with `launch`, binding `nonce` and
  // `bound_key` (the key in REPORT_DATA) while sending `sent_key`.
  std::string attestation(const sim::SnpLaunch& launch, const std::string& nonce,
                          const kbs::TeePubKey& bound_key, const kbs::TeePubKey& sent_key) {
    const auto rd = kbs::expected_report_data(bound_key, nonce, "").value();
    const nlohmann::json body = {
        {"init-data", nullptr},
        {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", kbs::to_json(sent_key)}}},
        {"tee-evidence",
         {{"primary_evidence", snp_evidence(launch, rd)}, {"additional_evidence", ""}}}};
    return body.dump();
  }

  http::Response attest(const std::string& cookie, const std::string& body) {
    auto r = request("POST", "/kbs/v0/attest", body);
    if (!cookie.empty()) r.headers["cookie"] = cookie;
    return service_->handle(r, "guest");
  }

  // The token of a passing attestation of the reference image, bound to `tee`'s key.
  std::string attested_token(const jwe::TeeKeyPair& tee) {
    const auto [cookie, nonce] = auth();
    const auto r =
        attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key()));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? nlohmann::json::parse(r.body).at("token").get<std::string>()
                           : std::string();
  }

  http::Response resource(const std::string& path, const std::string& token) {
    auto r = request("GET", "/kbs/v0/resource/" + path);
    r.headers["authorization"] = "Bearer " + token;
    return service_->handle(r, "guest");
  }

  std::vector<nlohmann::json> audit_records() {
    const auto r = admin("GET", "/admin/v0/audit");
    EXPECT_EQ(r.status, 200);
    const auto doc = nlohmann::json::parse(r.body);
    EXPECT_TRUE(doc.at("intact").get<bool>());
    std::vector<nlohmann::json> out;
    std::string log = doc.at("log");
    for (std::size_t start = 0, end; (end = log.find('\n', start)) != std::string::npos;
         start = end + 1) {
      out.push_back(nlohmann::json::parse(log.substr(start, end - start)));
    }
    return out;
  }

  static void expect_kbs_error(const http::Response& r, int status, const std::string& variant,
                               const std::string& detail) {
    EXPECT_EQ(r.status, status) << r.body;
    const auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body.at("type"), "https://github.com/confidential-containers/kbs/errors/" + variant);
    EXPECT_THAT(body.at("detail").get<std::string>(), HasSubstr(detail));
  }

  fs::path dir_;
  std::string admin_key_;
  std::shared_ptr<ObservedStore> store_;
  std::unique_ptr<AttestationService> service_;
  UnixTime now_ = kStart;
};

// The whole suite runs against both stores: the embedded SQLite and a real PostgreSQL.
INSTANTIATE_TEST_SUITE_P(Stores, AttestdTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

TEST_P(AttestdTest, AnAttestedSimulatedGuestReceivesItsSecret) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  EXPECT_EQ(from_base64(nonce).value().size(), 32u);
  const std::string body =
      attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key());
  const auto attested = attest(cookie, body);
  ASSERT_EQ(attested.status, 200) << attested.body;
  const std::string token = nlohmann::json::parse(attested.body).at("token");
  EXPECT_THAT(attested.extra_headers, HasSubstr("kbs-session-id=" + token));

  const auto claims = ear::verify(token, service_->jwks(), now_).value();
  const auto& cpu0 = claims.submods.at("cpu0");
  // A simulated secure processor is no hardware: the appraisal says so.
  EXPECT_EQ(cpu0.status, ear::Tier::kWarning);
  EXPECT_EQ(cpu0.policy_id, "default");
  const auto& annotated = cpu0.extensions.at("ear.veraison.annotated-evidence");
  EXPECT_EQ(annotated.at("snp").at("measurement"), to_hex(Bytes(48, 0x4d)));
  EXPECT_EQ(annotated.at("runtime_data_claims").at("nonce"), nonce);
  EXPECT_EQ(annotated.at("runtime_data_claims").at("tee-pubkey"), kbs::to_json(tee.public_key()));

  const auto released = resource("tenant/key/disk", token);
  ASSERT_EQ(released.status, 200) << released.body;
  const auto plaintext = tee.decrypt(nlohmann::json::parse(released.body)).value();
  EXPECT_EQ(std::string(plaintext.begin(), plaintext.end()), "disk passphrase");

  // The cookie the attest step set works as well as the bearer token.
  auto by_cookie = request("GET", "/kbs/v0/resource/tenant/key/disk");
  by_cookie.headers["cookie"] = "other=1; kbs-session-id=" + token;
  EXPECT_EQ(service_->handle(by_cookie, "guest").status, 200);

  const auto records = audit_records();
  ASSERT_EQ(records.size(), 5u);  // two admin uploads, the attestation, two releases
  EXPECT_EQ(records[2].at("outcome"), "attested");
  EXPECT_EQ(records[2].at("measurement"), to_hex(Bytes(48, 0x4d)));
  EXPECT_EQ(records[3].at("outcome"), "released");
  EXPECT_EQ(records[3].at("resource"), "tenant/key/disk");
  EXPECT_EQ(records[3].at("reason"), "ok");
  // The release names the evidence that earned it: the token carries its digest.
  const auto sent = evidence::parse_snp_evidence(
      nlohmann::json::parse(body).at("tee-evidence").at("primary_evidence"));
  const std::string digest = to_hex(sha256(sent.value().report));
  EXPECT_EQ(records[2].at("evidence_digest"), digest);
  EXPECT_EQ(cpu0.extensions.at("cloister.evidence-sha256"), digest);
  EXPECT_EQ(records[3].at("evidence_digest"), digest);
  EXPECT_EQ(records[4].at("evidence_digest"), digest);
  // And the resource policy that let it out: the digest its upload was recorded with.
  EXPECT_EQ(records[1].at("resource"), "tenant/key/disk");
  EXPECT_EQ(
      records[3].at("policy_digest"),
      to_hex(sha256(as_bytes(std::string_view(R"({"accept_status":["affirming","warning"]})")))));
  EXPECT_EQ(records[3].at("policy_digest"), records[1].at("policy_digest"));
  // The secret itself is never in the log.
  EXPECT_EQ(admin("GET", "/admin/v0/audit").body.find("disk passphrase"), std::string::npos);
}

// The attestation result in its CWT form: the same claims, annotated evidence included, as a
// COSE_Sign1 under the same key; only for a token that verifies.
TEST_P(AttestdTest, TheResultIsAlsoServedAsACwt) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  const auto attested =
      attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key()));
  ASSERT_EQ(attested.status, 200) << attested.body;
  const std::string token = nlohmann::json::parse(attested.body).at("token");

  auto get_cwt = request("GET", "/ear/v0/cwt");
  get_cwt.headers["authorization"] = "Bearer " + token;
  const auto r = service_->handle(get_cwt, "guest");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/eat+cwt");
  const auto cwt = ear::verify_cwt(as_bytes(r.body), service_->jwks(), now_);
  ASSERT_TRUE(cwt) << cwt.error().message();
  EXPECT_EQ(*cwt, ear::verify(token, service_->jwks(), now_).value());
  EXPECT_EQ(cwt->submods.at("cpu0")
                .extensions.at("ear.veraison.annotated-evidence")
                .at("runtime_data_claims")
                .at("nonce"),
            nonce);

  // Each signature handed out is recorded, as is each refusal.
  EXPECT_EQ(audit_records().back().at("outcome"), "cwt");
  EXPECT_EQ(audit_records().back().at("evidence_digest"),
            cwt->submods.at("cpu0").extensions.at("cloister.evidence-sha256"));
  expect_kbs_error(service_->handle(request("GET", "/ear/v0/cwt"), "guest"), 401, "TokenNotFound",
                   "Attestation Token not found");
  EXPECT_EQ(audit_records().back().at("outcome"), "denied");
  std::string forged = token;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  get_cwt.headers["authorization"] = "Bearer " + forged;
  expect_kbs_error(service_->handle(get_cwt, "guest"), 401, "TokenVerifierError",
                   "EAR signature: does not verify");
  now_ += 3600;
  get_cwt.headers["authorization"] = "Bearer " + token;
  expect_kbs_error(service_->handle(get_cwt, "guest"), 401, "TokenVerifierError",
                   "EAR.exp: expired at");
}

// A replica remembers the tokens it issued and skips their second signature check; a replica
// that did not issue a token (the same keys and store, as behind a load balancer) verifies it,
// and both refuse it once it expired.
TEST_P(AttestdTest, AReplicaThatDidNotIssueTheTokenVerifiesIt) {
  ServiceOptions options;
  options.verifier.trust_roots.push_back(genoa().amd().ark().cert);
  options.clock = [this] { return now_; };
  AttestationService other(store_, load_or_create_keys(dir_).value().keys, options);
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const std::string token = attested_token(tee);
  ASSERT_FALSE(token.empty());
  auto get = request("GET", "/kbs/v0/resource/tenant/key/disk");
  get.headers["authorization"] = "Bearer " + token;
  const auto released = other.handle(get, "guest");
  ASSERT_EQ(released.status, 200) << released.body;
  EXPECT_EQ(tee.decrypt(nlohmann::json::parse(released.body)).value(),
            Bytes(as_bytes(std::string_view("disk passphrase")).begin(),
                  as_bytes(std::string_view("disk passphrase")).end()));
  EXPECT_EQ(resource("tenant/key/disk", token).status, 200);
  now_ += 3600;
  for (AttestationService* replica : {service_.get(), &other}) {
    expect_kbs_error(replica->handle(get, "guest"), 401, "TokenVerifierError",
                     "EAR.exp: expired at");
  }
}

TEST_P(AttestdTest, AReplayedNonceIsRefused) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  const auto body = attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key());
  ASSERT_EQ(attest(cookie, body).status, 200);
  expect_kbs_error(attest(cookie, body), 401, "AttestationError",
                   "nonce " + nonce + " was already used");
}

// After a pass the session's cookie is its token (a cookie jar holds it): the same attestation
// sent again on that session gets the same token, as Trustee answers a session already attested;
// another nonce or another key on it does not.
TEST_P(AttestdTest, TheSameAttestationOnAnAttestedSessionGetsItsTokenAgain) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  const auto body = attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key());
  const auto first = attest(cookie, body);
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string token = nlohmann::json::parse(first.body).at("token");
  const std::string attested_cookie = cookie_of(first);
  EXPECT_EQ(attested_cookie, "kbs-session-id=" + token);

  const std::size_t before = audit_records().size();
  const auto again = attest(attested_cookie, body);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(nlohmann::json::parse(again.body).at("token"), token);
  EXPECT_EQ(again.extra_headers, first.extra_headers);
  const auto records = audit_records();
  ASSERT_EQ(records.size(), before + 1);
  EXPECT_EQ(records.back().at("outcome"), "attested");
  EXPECT_EQ(records.back().at("reason"), "ok: the session's token, answered again");
  EXPECT_EQ(records.back().at("evidence_digest"), records[before - 1].at("evidence_digest"));

  const auto [other_cookie, other_nonce] = auth();
  expect_kbs_error(attest(attested_cookie, attestation(launch_with(0x4d), other_nonce,
                                                       tee.public_key(), tee.public_key())),
                   401, "AttestationError",
                   "this session was attested for nonce " + nonce +
                       " and its tee-pubkey; found nonce " + other_nonce);
  const auto attacker = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  expect_kbs_error(attest(attested_cookie, attestation(launch_with(0x4d), nonce, tee.public_key(),
                                                       attacker.public_key())),
                   401, "AttestationError", "this session was attested for nonce " + nonce);
  now_ += 3600;
  expect_kbs_error(attest(attested_cookie, body), 401, "AttestationError",
                   "the session's attestation token: EAR.exp: expired at");
}

// Trustee's cookie: Expires and nothing else (a Secure attribute would keep a cookie jar from
// returning it over plain HTTP behind a TLS-terminating proxy).
TEST_P(AttestdTest, TheSessionCookieCarriesOnlyItsExpiry) {
  const auto r = service_->handle(
      request("POST", "/kbs/v0/auth", R"({"version":"0.4.0","tee":"snp","extra-params":""})"),
      "guest");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.extra_headers,
            "Set-Cookie: " + cookie_of(r) + "; Expires=Fri, 15 Jan 2027 08:05:00 GMT\r\n");
}

TEST_P(AttestdTest, RefusedChallengesAndAdminDeletionsAreAudited) {
  const auto old = service_->handle(
      request("POST", "/kbs/v0/auth", R"({"version":"0.1.0","tee":"snp","extra-params":""})"),
      "guest");
  expect_kbs_error(old, 401, "AttestationError", "0.1.0");
  auto records = audit_records();
  EXPECT_EQ(records.back().at("outcome"), "denied");
  EXPECT_EQ(records.back().at("client"), "guest");
  EXPECT_THAT(records.back().at("reason").get<std::string>(), HasSubstr("0.1.0"));
  const std::size_t before = records.size();
  auth();
  EXPECT_EQ(audit_records().size(), before);  // a challenge is no decision

  ASSERT_EQ(admin("DELETE", "/admin/v0/reference-values/default").status, 200);
  records = audit_records();
  EXPECT_EQ(records.back().at("outcome"), "admin-delete");
  EXPECT_EQ(records.back().at("resource"), "reference-values/default");
  EXPECT_EQ(records.back().at("client"), "admin-test");
}

TEST_P(AttestdTest, AnExpiredSessionIsRefused) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  now_ += 301;
  expect_kbs_error(
      attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key())),
      401, "AttestationError", "the session expired");
}

TEST_P(AttestdTest, AForgedOrMissingSessionIsRefused) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  auto [cookie, nonce] = auth();
  const auto body = attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key());
  expect_kbs_error(attest("", body), 401, "AttestationError", "no kbs-session-id cookie");
  cookie[cookie.size() - 2] = cookie[cookie.size() - 2] == 'A' ? 'B' : 'A';
  expect_kbs_error(attest(cookie, body), 401, "AttestationError", "MAC does not verify");
  expect_kbs_error(attest("kbs-session-id=no-dot", body), 401, "AttestationError",
                   "kbs-session-id: expected a session of this service (PAYLOAD.MAC), found 6 "
                   "characters without a '.'");
}

TEST_P(AttestdTest, AReportBoundToAnotherKeyIsRefused) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto attacker = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  // The guest's report binds its own key; a man in the middle swaps in his.
  expect_kbs_error(attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(),
                                              attacker.public_key())),
                   401, "AttestationError", "policy.report_data: expected ");
}

// A key no resource could be encrypted to is refused when it is presented, before the nonce is
// spent and a token signed: the guest can try again in the same session with a usable key.
TEST_P(AttestdTest, AnUnusableTeeKeyIsRefusedAtAttestAndTheNonceKept) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kRsa3072).value();
  auto weak = std::get<kbs::RsaTeeKey>(tee.public_key());
  weak.e = to_base64url(Bytes{1});  // e = 1: the wrapped key would travel in the clear
  const auto [cookie, nonce] = auth();
  expect_kbs_error(attest(cookie, attestation(launch_with(0x4d), nonce, weak, weak)), 401,
                   "AttestationError",
                   "runtime-data: tee-pubkey.e: expected an odd exponent from 65537 to 2^64 - 1, "
                   "found 1");
  const auto r =
      attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key()));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_P(AttestdTest, ADebugGuestIsRefused) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  const auto r = attest(cookie, attestation(launch_with(0x4d, 0x30000 | (1u << 19)), nonce,
                                            tee.public_key(), tee.public_key()));
  expect_kbs_error(r, 401, "AttestationError", "policy.guest.debug");
  const auto records = audit_records();
  EXPECT_EQ(records.back().at("outcome"), "denied");
  EXPECT_THAT(records.back().at("reason").get<std::string>(), HasSubstr("policy.guest.debug"));
}

// A refusal quoting the client's bytes (here nlohmann's "last read: '…'" of a body that is not
// UTF-8) is audited all the same: the parser's message quotes those bytes as \xNN.
TEST_P(AttestdTest, ADenialQuotingBytesThatAreNotUtf8IsAuditedAllTheSame) {
  const auto [cookie, nonce] = auth();
  const std::size_t before = audit_records().size();
  expect_kbs_error(attest(cookie, "{\"init-data\": \xff\xfe}"), 401, "AttestationError",
                   "Attest failed");
  const auto records = audit_records();
  ASSERT_EQ(records.size(), before + 1);
  EXPECT_EQ(records.back().at("outcome"), "denied");
  EXPECT_THAT(records.back().at("reason").get<std::string>(),
              HasSubstr("last read: '\"init-data\": \\xff'"));
  EXPECT_EQ(store_->failed_appends.load(), 0u);
}

// A token or a secret is only handed out once its audit record is written; without the log
// (a full disk, a lost database) the guest is refused and nothing leaves the service.
TEST_P(AttestdTest, NoTokenAndNoSecretWithoutTheirAuditRecord) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const std::string token = attested_token(tee);
  ASSERT_FALSE(token.empty());
  const auto [cookie, nonce] = auth();
  store_->refuse_audit = true;
  const auto attested =
      attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key()));
  expect_kbs_error(attested, 401, "AttestationError",
                   "the audit log could not record it: audit store: no space left on device");
  EXPECT_EQ(cookie_of(attested), "");
  const auto released = resource("tenant/key/disk", token);
  expect_kbs_error(released, 401, "PluginInternalError",
                   "the audit log could not record it: audit store: no space left on device");
  EXPECT_EQ(released.body.find("ciphertext"), std::string::npos);
  EXPECT_THAT(service_->metrics_text(),
              HasSubstr("cloister_attestd_denials_total{reason=\"audit\"} 2\n"));
  EXPECT_THAT(service_->metrics_text(), HasSubstr("cloister_attestd_releases_total 0\n"));

  store_->refuse_audit = false;
  const auto records = audit_records();
  const auto released_again = resource("tenant/key/disk", token);
  ASSERT_EQ(released_again.status, 200) << released_again.body;
  EXPECT_EQ(audit_records().size(), records.size() + 1);
  EXPECT_EQ(audit_records().back().at("outcome"), "released");
}

// An admin change is recorded before it is made: when the audit log cannot take the record, the
// change is not made (it used to stand unrecorded), and a recorded change carries "requested".
TEST_P(AttestdTest, NoAdminChangeWithoutItsAuditRecord) {
  store_->refuse_audit = true;
  const auto refused = admin("DELETE", "/admin/v0/reference-values/default");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("admin change not made: the audit log could not record it: "
                                      "audit store: no space left on device"));
  store_->refuse_audit = false;
  EXPECT_EQ(admin("GET", "/admin/v0/reference-values/default").status, 200);
  ASSERT_EQ(admin("DELETE", "/admin/v0/reference-values/default").status, 200);
  const auto records = audit_records();
  EXPECT_EQ(records.back().at("outcome"), "admin-delete");
  EXPECT_EQ(records.back().at("reason"), "requested");
  // A change the store then refuses gets a second record saying so.
  EXPECT_EQ(admin("DELETE", "/admin/v0/reference-values/default").status, 404);
  const auto after = audit_records();
  ASSERT_EQ(after.size(), records.size() + 2);
  EXPECT_EQ(after[after.size() - 2].at("reason"), "requested");
  EXPECT_THAT(after.back().at("reason").get<std::string>(),
              HasSubstr("failed: no policy 'default'"));
}

TEST_P(AttestdTest, AnUnknownMeasurementIsRefusedNamingBoth) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  expect_kbs_error(
      attest(cookie, attestation(launch_with(0x4e), nonce, tee.public_key(), tee.public_key())),
      401, "AttestationError",
      "policy.measurement: expected one of [" + to_hex(Bytes(48, 0x4d)) + "], found " +
          to_hex(Bytes(48, 0x4e)));
}

// Init-data (Trustee's initdata): the document a guest sends must be the one whose digest the
// host set in HOST_DATA at launch, and its data reaches the token as Trustee's claims.
TEST_P(AttestdTest, InitDataMustBeTheDocumentTheGuestWasLaunchedWith) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const std::string document =
      "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n"
      "\"cdh.toml\" = \"socket = 'unix:///run/cdh.sock'\"\n";
  const auto digest = sha384(as_bytes(document));
  sim::SnpLaunch launched = launch_with(0x4d);
  std::copy_n(digest.begin(), 32, launched.host_data.begin());
  const auto attest_with = [&](const sim::SnpLaunch& launch, const nlohmann::json& init) {
    const auto [cookie, nonce] = auth();
    auto body =
        nlohmann::json::parse(attestation(launch, nonce, tee.public_key(), tee.public_key()));
    body["init-data"] = init;
    return attest(cookie, body.dump());
  };

  const auto passed = attest_with(launched, {{"format", "toml"}, {"body", document}});
  ASSERT_EQ(passed.status, 200) << passed.body;
  const auto claims = ear::verify(nlohmann::json::parse(passed.body).at("token").get<std::string>(),
                                  service_->jwks(), now_)
                          .value();
  const auto& annotated =
      claims.submods.at("cpu0").extensions.at("ear.veraison.annotated-evidence");
  EXPECT_EQ(annotated.at("init_data_claims"),
            nlohmann::json::parse(R"({"cdh.toml":{"socket":"unix:///run/cdh.sock"}})"));
  EXPECT_EQ(annotated.at("snp").at("host_data"), to_hex(ByteView(digest).first(32)));

  // Sent again on its session, the attestation must carry the same document.
  {
    const auto [cookie, nonce] = auth();
    auto body =
        nlohmann::json::parse(attestation(launched, nonce, tee.public_key(), tee.public_key()));
    body["init-data"] = {{"format", "toml"}, {"body", document}};
    const auto first = attest(cookie, body.dump());
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(attest(cookie_of(first), body.dump()).status, 200);
    body["init-data"]["body"] = document + "\n";
    expect_kbs_error(attest(cookie_of(first), body.dump()), 401, "AttestationError",
                     "init-data: HOST_DATA expected ");
    body["init-data"] = nullptr;
    expect_kbs_error(attest(cookie_of(first), body.dump()), 401, "AttestationError",
                     "init-data: this session was attested with init-data; found none");
  }

  // One byte more in the document: not the one the guest was launched with.
  const std::string altered = document + "\n";
  const auto altered_digest = sha384(as_bytes(altered));
  expect_kbs_error(attest_with(launched, {{"format", "toml"}, {"body", altered}}), 401,
                   "AttestationError",
                   "init-data: HOST_DATA expected " + to_hex(ByteView(altered_digest).first(32)) +
                       " (the document's sha384 digest in 32 bytes), found " +
                       to_hex(ByteView(digest).first(32)) +
                       " (the guest was launched with other init-data, or none)");
  // A guest launched without init-data claiming some.
  expect_kbs_error(attest_with(launch_with(0x4d), {{"format", "toml"}, {"body", document}}), 401,
                   "AttestationError",
                   "init-data: HOST_DATA expected " + to_hex(ByteView(digest).first(32)) +
                       " (the document's sha384 digest in 32 bytes), found " +
                       std::string(64, '0'));
  // Claims too large for a token the guest could send back: refused now, naming the sizes.
  const std::string big = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\nbig = \"" +
                          std::string(70000, 'x') + "\"\n";
  const auto big_digest = sha384(as_bytes(big));
  sim::SnpLaunch big_launch = launch_with(0x4d);
  std::copy_n(big_digest.begin(), 32, big_launch.host_data.begin());
  const auto too_big = attest_with(big_launch, {{"format", "toml"}, {"body", big}});
  expect_kbs_error(too_big, 401, "AttestationError",
                   "bytes, more than the 61440 a guest can send back in a request header (the "
                   "init-data claims are 70010 bytes of it)");
  // Only TOML, as Trustee's attestation service.
  expect_kbs_error(attest_with(launched, {{"format", "json"}, {"body", "{}"}}), 401,
                   "AttestationError", "init-data: format: expected \"toml\", found \"json\"");
  // Without init-data the token says so.
  const auto plain = ear::verify(attested_token(tee), service_->jwks(), now_).value();
  EXPECT_TRUE(plain.submods.at("cpu0")
                  .extensions.at("ear.veraison.annotated-evidence")
                  .at("init_data_claims")
                  .is_null());
  const auto records = audit_records();
  EXPECT_EQ(records.at(records.size() - 2).at("outcome"), "denied");
  EXPECT_THAT(records.at(records.size() - 2).at("reason").get<std::string>(),
              HasSubstr("init-data: format"));
}

TEST_P(AttestdTest, WithoutReferenceValuesNothingIsAccepted) {
  ASSERT_EQ(admin("DELETE", "/admin/v0/reference-values/default").status, 200);
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  expect_kbs_error(
      attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key())),
      401, "AttestationError", "reference values 'default': no policy with id 'default'");
}

// A token holds only under the reference values it was appraised with: revoking a measurement
// takes effect at once, not when the tokens issued under the old values expire.
TEST_P(AttestdTest, ChangedReferenceValuesRevokeTheTokensIssuedUnderTheOldOnes) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [first_cookie, first_nonce] = auth();
  const std::string body =
      attestation(launch_with(0x4d), first_nonce, tee.public_key(), tee.public_key());
  const auto attested = attest(first_cookie, body);
  ASSERT_EQ(attested.status, 200) << attested.body;
  const std::string token = nlohmann::json::parse(attested.body).at("token");
  const std::string old_digest = to_hex(sha256(as_bytes(reference_values(0x4d))));
  EXPECT_EQ(ear::verify(token, service_->jwks(), now_)
                .value()
                .submods.at("cpu0")
                .extensions.at("cloister.reference-values-sha256"),
            old_digest);
  ASSERT_EQ(resource("tenant/key/disk", token).status, 200);

  // The operator revokes 0x4d: the token no longer opens anything, and the guest cannot earn
  // another.
  ASSERT_EQ(admin("PUT", "/admin/v0/reference-values/default", reference_values(0x4e)).status, 200);
  const std::string new_digest = to_hex(sha256(as_bytes(reference_values(0x4e))));
  expect_kbs_error(resource("tenant/key/disk", token), 401, "TokenVerifierError",
                   "cloister.reference-values-sha256: expected the reference values in force (" +
                       new_digest + "), found " + old_digest +
                       ": they changed since the token was issued; attest again");
  // Nor is it signed again as a CWT, or answered again on its session.
  auto cwt = request("GET", "/ear/v0/cwt");
  cwt.headers["authorization"] = "Bearer " + token;
  expect_kbs_error(service_->handle(cwt, "guest"), 401, "TokenVerifierError",
                   "they changed since the token was issued");
  expect_kbs_error(attest("kbs-session-id=" + token, body), 401, "AttestationError",
                   "the session's token: cloister.reference-values-sha256: expected the "
                   "reference values in force (" +
                       new_digest + ")");
  const auto [cookie, nonce] = auth();
  EXPECT_EQ(
      attest(cookie, attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key()))
          .status,
      401);
  // Without reference values no token holds.
  ASSERT_EQ(admin("DELETE", "/admin/v0/reference-values/default").status, 200);
  expect_kbs_error(resource("tenant/key/disk", token), 401, "TokenVerifierError",
                   "expected the reference values in force (none)");
  const auto records = audit_records();
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().at("outcome"), "denied");
  EXPECT_EQ(records.back().at("resource"), "tenant/key/disk");
}

TEST_P(AttestdTest, ResourcesAreReleasedOnlyAsTheirPolicySays) {
  put_resource("tenant/key/hardware-only", "only on real hardware", "{}");
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kRsa3072).value();
  const std::string token = attested_token(tee);
  ASSERT_FALSE(token.empty());

  expect_kbs_error(resource("tenant/key/hardware-only", token), 401, "PolicyDeny",
                   "accept_status: expected one of [affirming], found warning");
  expect_kbs_error(resource("tenant/key/absent", token), 401, "PluginInternalError",
                   "no resource at 'tenant/key/absent'");
  expect_kbs_error(resource("tenant/../disk", token), 404, "InvalidRequestPath",
                   "/kbs/v0/resource/tenant/../disk");
  expect_kbs_error(service_->handle(request("GET", "/kbs/v0/resource/tenant/key/disk"), "guest"),
                   401, "TokenNotFound", "Attestation Token not found");
  // Tokens expire: five minutes by default.
  now_ += 400;
  expect_kbs_error(resource("tenant/key/disk", token), 401, "TokenVerifierError", "exp");
}

TEST_P(AttestdTest, TheAdminApiNeedsTheAdminKey) {
  expect_kbs_error(admin("GET", "/admin/v0/resources", "", "not-the-key"), 401, "AdminAuthAccess",
                   "wrong admin bearer key");
  auto bare = request("GET", "/admin/v0/audit");
  expect_kbs_error(service_->handle(bare, "x"), 401, "AdminAuthAccess", "admin bearer key");
  // Reference values and resource policies are checked before they are stored.
  const auto bad =
      admin("PUT", "/admin/v0/reference-values/default", R"({"snp":{"measurments":[]}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("measurments"));
  const auto bad_policy = admin("PUT", "/admin/v0/resources/a/b/c",
                                R"({"value":"AA==","policy":{"accept_status":["fine"]}})");
  EXPECT_EQ(bad_policy.status, 400);
  EXPECT_THAT(bad_policy.body, HasSubstr("accept_status"));
  // An allowlist given empty would admit no guest: refused, not read as "any".
  for (const char* key : {"accept_status", "tees", "reference_values"}) {
    const auto empty = admin("PUT", "/admin/v0/resources/a/b/c",
                             std::string(R"({"value":"AA==","policy":{")") + key + R"(":[]}})");
    EXPECT_EQ(empty.status, 400) << key;
    EXPECT_THAT(empty.body, HasSubstr(std::string("resource policy /") + key +
                                      ": an empty list admits no guest"));
  }
  // A resource path names its bad segment and what it held.
  const auto dots = admin("PUT", "/admin/v0/resources/a/../c", R"({"value":"AA=="})");
  EXPECT_EQ(dots.status, 400);
  EXPECT_THAT(dots.body,
              HasSubstr("resource path: segment 2: expected a non-empty name other than '.' and "
                        "'..', found '..'"));
  const auto star = admin("PUT", "/admin/v0/resources/a/b/c*", R"({"value":"AA=="})");
  EXPECT_EQ(star.status, 400);
  EXPECT_THAT(star.body, HasSubstr("resource path: segment 3: expected characters of "
                                   "[A-Za-z0-9._-], found '*'"));
}

TEST_P(AttestdTest, ResourcesAreSealedAtRest) {
  const auto stored = store_->get_resource("tenant/key/disk").value();
  const std::string sealed(stored.sealed.begin(), stored.sealed.end());
  EXPECT_EQ(sealed.find("disk passphrase"), std::string::npos);
  EXPECT_EQ(stored.sealed.size(), 12 + std::string("disk passphrase").size() + 16);
}

TEST_P(AttestdTest, KeysArePrivateAndStableAcrossRestarts) {
  for (const char* name : {"token-key.pem", "session.key", "kek.key", "admin-key.sha256"}) {
    const auto perms = fs::status(dir_ / name).permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << name;
  }
  auto again = load_or_create_keys(dir_).value();
  EXPECT_FALSE(again.new_admin_key);  // shown once, at first start
  EXPECT_EQ(ear::jwks({&again.keys.token_signer}), service_->jwks());
}

TEST_P(AttestdTest, ARateLimitedClientGets429WhileOthersAreServed) {
  ServiceOptions options;
  options.rate_limit = 2;  // two a second, bursts of two
  AttestationService limited(store_, load_or_create_keys(dir_).value().keys, options);
  auto hello =
      request("POST", "/kbs/v0/auth", R"({"version":"0.4.0","tee":"snp","extra-params":""})");
  hello.peer = "192.0.2.1";
  EXPECT_EQ(limited.handle(hello, "x").status, 200);
  EXPECT_EQ(limited.handle(hello, "x").status, 200);
  const auto refused = limited.handle(hello, "x");
  expect_kbs_error(refused, 429, "TooManyRequests",
                   "client 192.0.2.1: more than 2 requests per second");
  EXPECT_EQ(refused.extra_headers, "Retry-After: 1\r\n");
  hello.peer = "192.0.2.2";
  EXPECT_EQ(limited.handle(hello, "x").status, 200);
  // The admin API too (a wrong key is audited, so unlimited guesses would fill the log);
  // probes are not limited.
  auto guess = request("GET", "/admin/v0/audit");
  guess.headers["authorization"] = "Bearer guess";
  guess.peer = "192.0.2.3";
  EXPECT_EQ(limited.handle(guess, "x").status, 401);
  EXPECT_EQ(limited.handle(guess, "x").status, 401);
  expect_kbs_error(limited.handle(guess, "x"), 429, "TooManyRequests", "client 192.0.2.3");
  hello.peer = "192.0.2.1";
  EXPECT_EQ(limited.handle(request("GET", "/healthz"), "x").status, 200);
  EXPECT_THAT(limited.metrics_text(),
              HasSubstr("cloister_attestd_denials_total{reason=\"rate_limit\"} 2\n"));
}

TEST_P(AttestdTest, MetricsCountVerdictsReleasesAndDenials) {
  const auto tee = jwe::TeeKeyPair::generate(jwe::TeeKeyPair::Kind::kEcP256).value();
  const auto [cookie, nonce] = auth();
  const auto body = attestation(launch_with(0x4d), nonce, tee.public_key(), tee.public_key());
  const std::string token = nlohmann::json::parse(attest(cookie, body).body).at("token");
  attest(cookie, body);
  resource("tenant/key/disk", token);
  const std::string m = service_->metrics_text();
  EXPECT_THAT(m, HasSubstr("cloister_attestd_attestations_total{verdict=\"pass\"} 1\n"));
  EXPECT_THAT(m, HasSubstr("cloister_attestd_attestations_total{verdict=\"fail\"} 1\n"));
  EXPECT_THAT(m, HasSubstr("cloister_attestd_denials_total{reason=\"replay\"} 1\n"));
  EXPECT_THAT(m, HasSubstr("cloister_attestd_releases_total 1\n"));
  EXPECT_THAT(m, HasSubstr("cloister_attestd_attest_seconds_count 2\n"));
}

// python3-jwcrypto, not our code, verifies the token against the JWKS endpoint's keys and
// decrypts the released resource with the TEE key (both key types).
TEST_P(AttestdTest, AnIndependentJoseLibraryVerifiesTheTokenAndDecryptsTheResource) {
  for (auto kind : {jwe::TeeKeyPair::Kind::kEcP256, jwe::TeeKeyPair::Kind::kEcP521,
                    jwe::TeeKeyPair::Kind::kRsa3072}) {
    const auto tee = jwe::TeeKeyPair::generate(kind).value();
    const std::string token = attested_token(tee);
    ASSERT_FALSE(token.empty());
    const auto released = resource("tenant/key/disk", token);
    ASSERT_EQ(released.status, 200) << released.body;
    const auto jwks = service_->handle(request("GET", "/.well-known/jwks.json"), "rp");
    std::ofstream(dir_ / "jwks.json") << jwks.body;
    std::ofstream(dir_ / "token") << token;
    std::ofstream(dir_ / "jwe.json") << released.body;
    {
      BIO* bio = BIO_new_file((dir_ / "tee.pem").c_str(), "w");
      ASSERT_NE(bio, nullptr);
      ASSERT_EQ(
          PEM_write_bio_PrivateKey(bio, tee.openssl_key(), nullptr, nullptr, 0, nullptr, nullptr),
          1);
      BIO_free(bio);
    }
    const auto check = cloister::testing::run_command(
        "/usr/bin/python3 " CLOISTER_TESTS_SOURCE_DIR "/service/jose_check.py " +
        (dir_ / "jwks.json").string() + " " + (dir_ / "token").string() + " " +
        (dir_ / "jwe.json").string() + " " + (dir_ / "tee.pem").string());
    EXPECT_EQ(check.status, 0) << check.out;
    EXPECT_THAT(check.out, HasSubstr("token: ES384 status warning\nresource: disk passphrase\n"));
  }
}

// Every body both sides put on the wire, validated against Trustee's OpenAPI document by a JSON
// Schema validator (python3-jsonschema), not by our own parser.
TEST_P(AttestdTest, TheWireBodiesMatchTrusteesOpenApiDocument) {
  CLOISTER_REQUIRE_VECTOR(openapi, "service/trustee/kbs/kbs-openapi.yaml");
  const fs::path bodies = dir_ / "bodies";
  fs::create_directories(bodies);
  int n = 0;
  auto keep = [&](const std::string& schema, const std::string& body) {
    std::ofstream(bodies / (schema + "." + std::to_string(n++) + ".json")) << body;
  };
  const std::string hello = R"({"version":"0.4.0","tee":"snp","extra-params":{}})";
  keep("Request", hello);
  keep("Request",
       kbs::to_json(kbs::Request{"0.4.0", kbs::Tee::kTdx, nlohmann::json::object()}).dump());
  const auto challenge = service_->handle(request("POST", "/kbs/v0/auth", hello), "guest");
  keep("Challenge", challenge.body);
  for (auto kind : {jwe::TeeKeyPair::Kind::kEcP256, jwe::TeeKeyPair::Kind::kRsa3072}) {
    const auto tee = jwe::TeeKeyPair::generate(kind).value();
    const auto [cookie, fresh] = auth();
    const std::string body =
        attestation(launch_with(0x4d), fresh, tee.public_key(), tee.public_key());
    keep("Attestation", body);
    // What KbsClient sends: the same attestation through kbs::to_json.
    keep("Attestation", kbs::to_json(kbs::parse_attestation(body).value()).dump());
    const auto attested = attest(cookie, body);
    ASSERT_EQ(attested.status, 200) << attested.body;
    keep("AttestationToken", attested.body);
    const auto released =
        resource("tenant/key/disk", nlohmann::json::parse(attested.body).at("token"));
    ASSERT_EQ(released.status, 200) << released.body;
    keep("JweResponse", released.body);
    keep("ErrorInformation", attest(cookie, body).body);  // the replay
  }
  keep("ErrorInformation", resource("tenant/key/disk", "not-a-token").body);
  keep("ErrorInformation", service_->handle(request("GET", "/kbs/v0/x"), "guest").body);
  const auto check = cloister::testing::run_command("/usr/bin/python3 " CLOISTER_TESTS_SOURCE_DIR
                                                    "/service/openapi_check.py " +
                                                    openapi.string() + " " + bodies.string());
  EXPECT_EQ(check.status, 0) << check.out;
  EXPECT_THAT(check.out, HasSubstr("15 bodies match Trustee's KBS OpenAPI schemas"));

  // The checker refuses what the document refuses: an error body without its detail.
  keep("ErrorInformation", R"({"type":"https://github.com/confidential-containers/kbs/errors/X"})");
  const auto refused = cloister::testing::run_command("/usr/bin/python3 " CLOISTER_TESTS_SOURCE_DIR
                                                      "/service/openapi_check.py " +
                                                      openapi.string() + " " + bodies.string());
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("does not match ErrorInformation: 'detail' is a required"));
}

}  // namespace
}  // namespace cloister::service
