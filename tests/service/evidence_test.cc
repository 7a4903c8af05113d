#include "cloister/service/evidence.h"

#include <gtest/gtest.h>

#include "cloister/attestation/snp/report.h"
#include "cloister/common/base64.h"
#include "cloister/common/hex.h"
#include "cloister/sdk/verifier.h"
#include "support/vectors.h"

namespace cloister::service::evidence {
namespace {

using cloister::testing::read_vector;

constexpr const char* kSevSerde = "service/trustee/as/snp-evidence-sev-serde.json";

nlohmann::json read_json(const std::filesystem::path& path) {
  const Bytes bytes = read_vector(path);
  return nlohmann::json::parse(bytes.begin(), bytes.end());
}

Bytes json_bytes(const nlohmann::json& array) {
  return array.get<Bytes>();
}

// Trustee's end-to-end SNP evidence (a real Genoa report, version 3, with its VCEK) as KBS
// clients send it: converted to the ABI bytes, decoded by our parser, verified by the SDK.
TEST(SnpEvidence, SevSerdeVectorBecomesTheSignedReport) {
  CLOISTER_REQUIRE_VECTOR(path, kSevSerde);
  const nlohmann::json wire = read_json(path);
  auto evidence = parse_snp_evidence(wire);
  ASSERT_TRUE(evidence) << evidence.error().message();
  ASSERT_EQ(evidence->report.size(), 1184u);

  auto report = attestation::snp::parse_snp_report(evidence->report);
  ASSERT_TRUE(report) << report.error().message();
  const auto& r = wire["attestation_report"];
  EXPECT_EQ(report->version, 3u);
  EXPECT_EQ(report->policy, 0x30000u);
  EXPECT_EQ(to_hex(report->measurement),
            "6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4ae62a36d75c837974dd50"
            "b315506e73e");
  EXPECT_EQ(to_hex(report->measurement), to_hex(json_bytes(r["measurement"])));
  EXPECT_EQ(to_hex(report->chip_id), to_hex(json_bytes(r["chip_id"])));
  EXPECT_EQ(to_hex(report->report_data), to_hex(json_bytes(r["report_data"])));
  ASSERT_TRUE(report->cpuid);
  EXPECT_EQ(report->cpuid->family, 0x19);
  EXPECT_EQ(report->cpuid->model, 0xa0);
  EXPECT_EQ(report->cpuid_product(), attestation::snp::Product::kGenoa);
  EXPECT_EQ(report->reported_tcb.parts(attestation::snp::Product::kGenoa).to_string(),
            "bl 10, tee 0, snp 23, ucode 25");
  EXPECT_EQ(report->current_version.to_string(), "1.55.40");
  EXPECT_EQ(report->platform_info, 37u);

  ASSERT_TRUE(evidence->cert_chain);
  ASSERT_EQ(evidence->cert_chain->size(), 1u);
  EXPECT_EQ((*evidence->cert_chain)[0].type, "VCEK");
  EXPECT_EQ((*evidence->cert_chain)[0].data.size(), 1347u);

  sdk::VerifyRequest request;
  request.evidence = evidence->report;
  request.certificates.push_back((*evidence->cert_chain)[0].data);
  auto verdict = sdk::Verifier().verify(request);
  ASSERT_TRUE(verdict) << verdict.error().message();
  const auto* signature = verdict->checks.find("snp.signature");
  ASSERT_NE(signature, nullptr);
  EXPECT_EQ(signature->status, attestation::CheckStatus::kPass) << signature->detail;
  EXPECT_EQ(signature->found, "verifies with SEV-VCEK");
}

TEST(SnpEvidence, ConvertingBackGivesTheSameJsonValues) {
  CLOISTER_REQUIRE_VECTOR(path, kSevSerde);
  const nlohmann::json wire = read_json(path);
  auto evidence = parse_snp_evidence(wire);
  ASSERT_TRUE(evidence);
  auto back = snp_evidence_to_json(*evidence);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, wire);
}

TEST(SnpEvidence, AnAlteredFieldNoLongerVerifies) {
  CLOISTER_REQUIRE_VECTOR(path, kSevSerde);
  nlohmann::json wire = read_json(path);
  wire["attestation_report"]["measurement"][0] = 0;
  auto evidence = parse_snp_evidence(wire);
  ASSERT_TRUE(evidence);
  sdk::VerifyRequest request;
  request.evidence = evidence->report;
  request.certificates.push_back((*evidence->cert_chain)[0].data);
  auto verdict = sdk::Verifier().verify(request);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->checks.find("snp.signature")->status, attestation::CheckStatus::kFail);
}

TEST(SnpEvidence, MalformedMembersAreNamed) {
  CLOISTER_REQUIRE_VECTOR(path, kSevSerde);
  const nlohmann::json wire = read_json(path);
  auto error = [&](auto mutate) {
    nlohmann::json copy = wire;
    mutate(copy);
    auto parsed = parse_snp_evidence(copy);
    return parsed ? std::string("accepted") : parsed.error().message();
  };
  EXPECT_EQ(error([](auto& j) { j["attestation_report"]["current_tcb"]["snp"] = 256; }),
            "attestation_report.current_tcb.snp: expected an integer 0..255, found 256");
  EXPECT_EQ(error([](auto& j) { j["attestation_report"]["measurement"].erase(0); }),
            "attestation_report.measurement: expected 48 bytes, found 47");
  EXPECT_EQ(error([](auto& j) { j["attestation_report"]["chip_id"][3] = -1; }),
            "attestation_report.chip_id[3]: expected an integer 0..255, found -1");
  EXPECT_EQ(error([](auto& j) { j["attestation_report"]["vmpl"] = "0"; }),
            "attestation_report.vmpl: expected an integer 0..4294967295, found string");
  EXPECT_EQ(error([](auto& j) { j["attestation_report"].erase("signature"); }),
            "attestation_report: missing member \"signature\"");
  EXPECT_EQ(error([](auto& j) { j["attestation_report"]["cpuid_step"] = nullptr; }),
            "attestation_report: cpuid_fam_id, cpuid_mod_id and cpuid_step must be all set or "
            "all null");
  // A Genoa report whose TCB names an FMC SPL (Turin's layout) does not encode.
  EXPECT_EQ(error([](auto& j) { j["attestation_report"]["launch_tcb"]["fmc"] = 1; }),
            "attestation_report.launch_tcb: TCB for Genoa: an FMC SPL was given, but this "
            "product's TCB_VERSION has none");
  // Version 3 reports carry the CPUID fields (ABI), so null ones do not encode.
  EXPECT_EQ(error([](auto& j) {
              for (auto* m : {"cpuid_fam_id", "cpuid_mod_id", "cpuid_step"})
                j["attestation_report"][m] = nullptr;
            }).rfind("attestation_report: ", 0),
            0u);
  EXPECT_EQ(error([](auto& j) { j["cert_chain"][0]["cert_type"] = "PEK"; }),
            "cert_chain[0].cert_type: expected one of Empty, ARK, ASK, VCEK, VLEK, CRL or "
            "{\"OTHER\": guid}, found \"PEK\"");
  EXPECT_EQ(error([](auto& j) { j.erase("cert_chain"); }),
            "snp evidence: missing member \"cert_chain\"");
  // A null chain and an OTHER entry are the crate's forms too.
  nlohmann::json no_chain = wire;
  no_chain["cert_chain"] = nullptr;
  auto parsed = parse_snp_evidence(no_chain);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->cert_chain);
  nlohmann::json other = wire;
  other["cert_chain"][0]["cert_type"] = {{"OTHER", "11111111-2222-3333-4444-555555555555"}};
  auto with_other = parse_snp_evidence(other);
  ASSERT_TRUE(with_other);
  EXPECT_EQ((*with_other->cert_chain)[0].type, "OTHER");
  EXPECT_EQ(*snp_evidence_to_json(*with_other), other);
}

TEST(TdxEvidence, QuoteAndEventLogAreStandardBase64) {
  const nlohmann::json wire = {{"cc_eventlog", "AQID"}, {"quote", "BAACAA=="}};
  auto evidence = parse_tdx_evidence(wire);
  ASSERT_TRUE(evidence) << evidence.error().message();
  EXPECT_EQ(evidence->quote, (Bytes{4, 0, 2, 0}));
  EXPECT_EQ(evidence->cc_eventlog, (Bytes{1, 2, 3}));
  EXPECT_EQ(to_json(*evidence), wire);
  auto no_log = parse_tdx_evidence({{"cc_eventlog", nullptr}, {"quote", "BAACAA=="}});
  ASSERT_TRUE(no_log);
  EXPECT_FALSE(no_log->cc_eventlog);
  EXPECT_TRUE(to_json(*no_log)["cc_eventlog"].is_null());
  EXPECT_EQ(parse_tdx_evidence({{"quote", "BAACAA"}}).error().message(),
            "tdx evidence.quote: base64: length 6 is not a multiple of 4");
  EXPECT_EQ(parse_tdx_evidence({{"cc_eventlog", 1}, {"quote", "AA=="}}).error().message(),
            "tdx evidence.cc_eventlog: expected a string or null, found number");
  EXPECT_EQ(parse_tdx_evidence({{"Quote", "AA=="}}).error().message(),
            "tdx evidence: missing member \"quote\"");
}

}  // namespace
}  // namespace cloister::service::evidence
