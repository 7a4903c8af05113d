#include "cloister/sdk/verifier.h"

#include <gtest/gtest.h>

#include "snp_facts.h"

namespace cloister::sdk {
namespace {

using cloister::testing::kSnpVectorTime;
using cloister::testing::read_vector;
using cloister::testing::snp_facts;
using cloister::testing::vector_path;

VerifyRequest request_for(const std::string& report, const std::vector<std::string>& certs) {
  VerifyRequest r;
  r.evidence = read_vector(*vector_path("snp/" + report));
  for (const auto& c : certs) r.certificates.push_back(read_vector(*vector_path("snp/" + c)));
  r.time = kSnpVectorTime;
  return r;
}

TEST(SdkVerifier, VerdictJsonShapeAndReportFields) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto verdict =
      Verifier().verify(request_for("turin_v5_vcek_report.oak.bin", {"turin_vcek.oak.der"}));
  ASSERT_TRUE(verdict);
  auto j = verdict->to_json();
  EXPECT_EQ(j["verdict"], "pass");
  EXPECT_EQ(j["tee"], "snp");
  ASSERT_TRUE(j["checks"].is_array());
  for (const auto& c : j["checks"]) {
    for (const char* key : {"name", "status", "expected", "found", "detail"})
      EXPECT_TRUE(c.contains(key)) << key;
  }
  const auto& f = snp_facts()["reports"]["turin_v5_vcek_report.oak.bin"];
  const auto& rep = j["report"];
  EXPECT_EQ(rep["measurement"], f["measurement"]);
  EXPECT_EQ(rep["chip_id"], f["chip_id"]);
  EXPECT_EQ(rep["reported_tcb"]["raw"], f["reported_tcb"]);
  EXPECT_EQ(rep["reported_tcb"]["fmc"], 0);
  EXPECT_EQ(rep["reported_tcb"]["ucode"], 71);
  EXPECT_EQ(rep["platform_info"]["raw"], "0x67");
  EXPECT_EQ(rep["platform_info"]["unknown_bit6"], true);
  EXPECT_EQ(rep["current_version"], "1.55.61");
  EXPECT_EQ(rep["cpuid_fam_id"], "0x1a");
  EXPECT_EQ(rep["launch_mit_vector"], "0x0");
  EXPECT_EQ(rep["product"], "Turin");
  EXPECT_EQ(rep["signer_info"]["signing_key"], "VCEK");
}

TEST(SdkVerifier, ReportFollowedByCertificateTable) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto verdict =
      Verifier().verify(request_for("CONSTRUCTED_milan_v2_report_plus_certtable.bin", {}));
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->checks.failures(), std::vector<std::string>{"policy.guest.debug"});
  EXPECT_EQ(verdict->checks.find("snp.cert_table")->found,
            "3 entries (VCEK, ASK/ASVK, ARK) from the certificate table after the report");
  // Trailing bytes that are no table: a failed check, not a crash or a usage error.
  auto r = request_for("genoa_v5_vcek_report.oak.bin", {"genoa_vcek.oak.der"});
  r.evidence.resize(r.evidence.size() + 10, 0x5a);
  auto junk = Verifier().verify(r);
  ASSERT_TRUE(junk);
  EXPECT_EQ(junk->checks.find("snp.cert_table")->status, attestation::CheckStatus::kFail);
}

TEST(SdkVerifier, UnusableInputsAreErrorsNotVerdicts) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto r = request_for("genoa_v5_vcek_report.oak.bin", {});
  r.certificates.push_back(Bytes{'n', 'o', 'p', 'e'});
  auto bad_cert = Verifier().verify(r);
  ASSERT_FALSE(bad_cert);
  EXPECT_EQ(bad_cert.error().message().rfind("certificate input 1: not a DER X.509 certificate", 0),
            0u);
  auto p = request_for("genoa_v5_vcek_report.oak.bin", {"genoa_vcek.oak.der"});
  p.product = "Naples";
  EXPECT_FALSE(Verifier().verify(p));
  auto c = request_for("genoa_v5_vcek_report.oak.bin", {"genoa_vcek.oak.der"});
  c.crls.push_back(Bytes{1, 2, 3});
  EXPECT_EQ(Verifier().verify(c).error().message().rfind("CRL input 1:", 0), 0u);
}

// Evidence beyond kEvidenceFileLimit is refused before it is parsed, whatever it holds.
TEST(SdkVerifier, EvidenceBeyondItsLimitIsAnError) {
  VerifyRequest r;
  r.evidence = Bytes(kEvidenceFileLimit.max_bytes, 0x5a);
  r.evidence[0] = 2;  // VERSION 2: an SEV-SNP report (with trailing bytes), so a verdict
  r.evidence[1] = r.evidence[2] = r.evidence[3] = 0;
  EXPECT_TRUE(Verifier().verify(r).ok());
  r.evidence.push_back(0x5a);
  auto refused = Verifier().verify(r);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(),
            "evidence: 1048577 bytes, larger than the 1 MiB an SEV-SNP report with its "
            "certificate table or a TDX quote can be (a report is 1184 bytes, a quote about 5 "
            "KiB)");
}

TEST(SdkVerifier, PolicyRevocationSettingsApply) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto r = request_for("genoa_v5_vcek_report.oak.bin", {"genoa_vcek.oak.der"});
  r.policy = *policy::parse_policy(R"({"snp": {"revocation": {"require_crl": true}}})");
  auto v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checks.failures(), (std::vector<std::string>{"snp.crl", "snp.revocation"}));
  r.crls.push_back(read_vector(*vector_path("snp/kds_vcek_crl_genoa.openpcc.der")));
  EXPECT_TRUE(Verifier().verify(r)->passed());
}

// A policy names the evidence it accepts: a genuine SEV-SNP report the host sends a tenant whose
// policy appraises TDX (or Azure vTPM evidence) fails policy.tee, instead of passing under the
// defaults, which pin nothing.
TEST(SdkVerifier, EvidenceOfAKindThePolicyHasNoSectionForFails) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto r = request_for("turin_v5_vcek_report.oak.bin", {"turin_vcek.oak.der"});
  const std::string mr_td(96, '1');
  r.policy = *policy::parse_policy(R"({"tdx": {"mr_td": [")" + mr_td + R"("]}})");
  auto v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checks.failures(), std::vector<std::string>{"policy.tee"});
  EXPECT_EQ(v->checks.find("policy.tee")->expected,
            "evidence of a kind the policy has a section for (tdx)");
  EXPECT_EQ(v->checks.find("policy.tee")->found, "snp evidence");
  EXPECT_EQ(v->checks.find("policy.tee")->detail,
            "the policy has no \"snp\" section, so it accepts no snp evidence");
  r.policy = *policy::parse_policy(R"({"snp": {}, "azure": {}})");
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checks.failures(), std::vector<std::string>{"policy.tee"});
  EXPECT_EQ(v->checks.find("policy.tee")->detail,
            "the policy has an \"azure\" section: it accepts Azure vTPM evidence only, whose "
            "paravisor its snp section describes, not a bare snp report");
  r.policy = *policy::parse_policy(R"({"snp": {}, "tdx": {}})");
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->passed()) << v->to_text();
  EXPECT_EQ(v->checks.find("policy.tee")->expected,
            "evidence of a kind the policy has a section for (snp, tdx)");
  // No policy: the secure defaults, and no policy.tee check.
  r.policy = {};
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->passed());
  EXPECT_EQ(v->checks.find("policy.tee"), nullptr);
}

TEST(SdkVerifier, TextOutputListsEveryCheckAndTheVerdict) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto v = Verifier().verify(
      request_for("milan_v2_vcek_report.gosevguest.bin", {"milan_vcek.gosevguest.der"}));
  ASSERT_TRUE(v);
  std::string text = v->to_text();
  EXPECT_NE(text.find("  FAIL  policy.guest.debug"), std::string::npos);
  EXPECT_NE(text.find("expected: DEBUG not set"), std::string::npos);
  EXPECT_NE(text.find("  PASS  snp.signature"), std::string::npos);
  EXPECT_NE(text.find("verdict: FAIL (1 of " + std::to_string(v->checks.all().size()) +
                      " checks failed: policy.guest.debug)"),
            std::string::npos);
}

}  // namespace
}  // namespace cloister::sdk
