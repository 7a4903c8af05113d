#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloister/cloister.h"
#include "snp_facts.h"

namespace {

using cloister::Bytes;
using cloister::testing::read_vector;
using cloister::testing::vector_path;

struct Owned {
  char* p = nullptr;
  ~Owned() { cloister_free(p); }
};

TEST(CApi, VerifiesPassFailAndInvalid) {
  CLOISTER_REQUIRE_SNP_FACTS();
  cloister_verifier* verifier = nullptr;
  ASSERT_EQ(cloister_verifier_new(R"({"online": false})", &verifier, nullptr), CLOISTER_PASS);
  Bytes report = read_vector(*vector_path("snp/genoa_v5_vcek_report.oak.bin"));
  Bytes vcek = read_vector(*vector_path("snp/genoa_vcek.oak.der"));
  cloister_bytes certs[] = {{vcek.data(), vcek.size()}};
  cloister_verify_request request{};
  request.struct_size = sizeof request;
  request.evidence = {report.data(), report.size()};
  request.certificates = certs;
  request.certificate_count = 1;
  request.time = cloister::testing::kSnpVectorTime;
  {
    Owned out;
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_PASS);
    auto j = nlohmann::json::parse(out.p);
    EXPECT_EQ(j["verdict"], "pass");
  }
  {
    Owned out;
    request.policy_json = R"({"snp": {"measurements": [")"
                          "00"
                          R"("]}})";
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_EINVAL);
    EXPECT_EQ(nlohmann::json::parse(out.p)["error"],
              "policy /snp/measurements/0: expected 48 bytes (96 hex digits), found 1 bytes");
  }
  {
    Owned out;
    request.policy_json = R"({"snp": {"vmpl": [1]}})";
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_FAIL);
    EXPECT_EQ(nlohmann::json::parse(out.p)["verdict"], "fail");
  }
  {
    Owned out;
    request.struct_size = 8;
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_EINVAL);
  }
  cloister_verifier_free(verifier);
}

TEST(CApi, AzureEvidenceWithItsNonceAndASeparateQuote) {
  const auto evidence_path = vector_path("azure/snp/evidence-v0.json");
  if (!evidence_path) GTEST_SKIP() << cloister::testing::vectors_missing_message("azure");
  cloister_verifier* verifier = nullptr;
  ASSERT_EQ(cloister_verifier_new(nullptr, &verifier, nullptr), CLOISTER_PASS);
  Bytes evidence = read_vector(*evidence_path);
  const std::string challenge = "challenge";
  cloister_verify_request request{};
  request.struct_size = sizeof request;
  request.evidence = {evidence.data(), evidence.size()};
  request.time = 1767225600;  // 2026-01-01
  request.nonce = {reinterpret_cast<const std::uint8_t*>(challenge.data()), challenge.size()};
  {
    Owned out;
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_PASS) << out.p;
    EXPECT_EQ(nlohmann::json::parse(out.p)["tee"], "az-snp-vtpm");
  }
  {
    Owned out;
    request.nonce = {reinterpret_cast<const std::uint8_t*>(challenge.data()), 4};
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_FAIL);
  }
  {
    // An empty nonce (a binding's empty byte string) would check an empty extraData and call the
    // quote fresh: refused, where {NULL, 0} says "not checked".
    Owned out;
    request.nonce = {reinterpret_cast<const std::uint8_t*>(challenge.data()), 0};
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_EINVAL);
    EXPECT_STREQ(
        out.p, R"({"error":"request.nonce: empty; pass {NULL, 0} to leave freshness unchecked"})");
  }
  // A bare HCL report with its quote's message and signature: no PCR values travel with them.
  Bytes hcl = read_vector(*vector_path("azure/snp/legacy/az-hcl-data.bin"));
  Bytes msg = read_vector(*vector_path("azure/snp/tpm-quote.msg"));
  Bytes sig = read_vector(*vector_path("azure/snp/tpm-quote.sig"));
  Bytes vcek = read_vector(*vector_path("azure/snp/legacy/az-vcek.pem"));
  cloister_bytes parts[] = {{msg.data(), msg.size()}, {sig.data(), sig.size()}};
  cloister_bytes certs[] = {{vcek.data(), vcek.size()}};
  request.evidence = {hcl.data(), hcl.size()};
  request.tpm_quote = parts;
  request.tpm_quote_count = 2;
  request.certificates = certs;
  request.certificate_count = 1;
  request.nonce = {reinterpret_cast<const std::uint8_t*>(challenge.data()), challenge.size()};
  {
    Owned out;
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_FAIL);
    auto j = nlohmann::json::parse(out.p);
    for (const auto& c : j["checks"]) {
      if (c["name"] == "azure.tpm.quote.signature") {
        EXPECT_EQ(c["status"], "pass");
      }
      if (c["name"] == "azure.tpm.pcr_digest") {
        EXPECT_EQ(c["found"], "no PCR values");
      }
    }
  }
  cloister_verifier_free(verifier);
}

TEST(CApi, OptionErrorsAndVersion) {
  cloister_verifier* verifier = nullptr;
  Owned error;
  EXPECT_EQ(cloister_verifier_new(R"({"onlin": true})", &verifier, &error.p), CLOISTER_EINVAL);
  EXPECT_STREQ(error.p,
               "options: unknown key 'onlin' (expected cache_dir, online, kds_url, pcs_url)");
  EXPECT_EQ(verifier, nullptr);
  Owned typed;
  EXPECT_EQ(cloister_verifier_new(R"({"online": 1})", &verifier, &typed.p), CLOISTER_EINVAL);
  EXPECT_STREQ(typed.p, "options: online: expected a boolean, found number");
  EXPECT_EQ(verifier, nullptr);
  // Parsed as strictly as policies: a repeated key is refused, not read as its last value.
  Owned repeated;
  EXPECT_EQ(cloister_verifier_new(R"({"online": false, "online": true})", &verifier, &repeated.p),
            CLOISTER_EINVAL);
  EXPECT_STREQ(repeated.p, R"(options: duplicate key "online" at /online)");
  EXPECT_EQ(verifier, nullptr);
  EXPECT_STREQ(cloister_version(), "0.1.0");
  Owned out;
  EXPECT_EQ(cloister_verify(nullptr, nullptr, &out.p), CLOISTER_EINVAL);
}

}  // namespace
