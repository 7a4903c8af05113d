// The SDK, the C ABI and verify-report on TDX evidence.
#include <gtest/gtest.h>

#include <cstddef>
#include <nlohmann/json.hpp>

#include "cloister/cloister.h"
#include "cloister/sdk/verifier.h"
#include "snp_facts.h"
#include "support/command.h"
#include "tdx_facts.h"

namespace cloister::sdk {
namespace {

using cloister::testing::tdx_facts;
using cloister::testing::tdx_vector;

const UnixTime kPhalaTime = 1751328000;  // 2025-07-01, inside the phala collateral's window

VerifyRequest phala_request() {
  VerifyRequest r;
  r.evidence = tdx_vector("phala/quote_v4_b0c06f.dat");
  r.collateral.push_back(tdx_vector("phala/tdx_quote_collateral.json"));
  r.time = kPhalaTime;
  return r;
}

TEST(SdkTdx, VerdictJsonShapeAndQuoteFields) {
  CLOISTER_REQUIRE_TDX_FACTS();
  EXPECT_EQ(detect_tee(tdx_vector("phala/quote_v4_b0c06f.dat")), "tdx");
  auto verdict = Verifier().verify(phala_request());
  ASSERT_TRUE(verdict) << verdict.error().message();
  EXPECT_TRUE(verdict->passed()) << verdict->to_text();
  auto j = verdict->to_json();
  EXPECT_EQ(j["verdict"], "pass");
  EXPECT_EQ(j["tee"], "tdx");
  for (const auto& c : j["checks"]) {
    for (const char* key : {"name", "status", "expected", "found", "detail"})
      EXPECT_TRUE(c.contains(key)) << key;
  }
  const auto& f = tdx_facts()["quotes"][3];
  const auto& rep = j["report"];
  for (const char* field : {"mr_td", "mr_seam", "mr_config_id", "rtmr0", "rtmr1", "rtmr2", "rtmr3",
                            "report_data", "tee_tcb_svn"})
    EXPECT_EQ(rep[field], f["td_report"][field]) << field;
  EXPECT_EQ(rep["td_attributes"]["raw"], f["td_report"]["td_attributes"]);
  EXPECT_EQ(rep["td_attributes"]["value"], "0x10000000");
  EXPECT_EQ(rep["td_attributes"]["sept_ve_disable"], true);
  EXPECT_EQ(rep["td_attributes"]["debug"], false);
  EXPECT_EQ(rep["xfam"]["value"], "0x602e7");
  EXPECT_EQ(rep["qe_report"]["mr_signer"], f["qe_report"]["mr_signer"]);
  EXPECT_EQ(rep["qe_report"]["isv_svn"], f["qe_report"]["isv_svn"]);
  EXPECT_EQ(rep["trailing_bytes"], 70);
  EXPECT_EQ(rep["pck"]["ca"], "platform");
  EXPECT_EQ(rep["pck"]["sgx_extensions"]["fmspc"], f["pck_sgx_extensions"]["fmspc"]);
  EXPECT_EQ(rep["pck"]["sgx_extensions"]["tcb_comp_svns"],
            f["pck_sgx_extensions"]["tcb_comp_svns"]);
  const auto& s = f["against_collateral"][0]["tcb_status_qvl_algorithm"];
  EXPECT_EQ(rep["tcb"]["status"], s["final"]);
  EXPECT_EQ(rep["tcb"]["tdx_level"]["tcb_date"], s["tdx_level"]["tcbDate"]);
  EXPECT_EQ(rep["tcb"]["module_identity"], s["module_identity"]);
  EXPECT_EQ(rep["tcb"]["module_level"]["isvsvn"], s["module_level"]["isvsvn"]);
  EXPECT_EQ(rep["tcb"]["qe_status"], s["qe_status"]);
  EXPECT_EQ(rep["collateral"]["tcb_info"]["fmspc"], "b0c06f000000");

  const std::string text = verdict->to_text();
  EXPECT_NE(text.find("  mr_td        " + f["td_report"]["mr_td"].get<std::string>()),
            std::string::npos);
  EXPECT_NE(text.find("  tcb_status   UpToDate (tcbDate 2024-03-13T00:00:00Z)"), std::string::npos);
}

TEST(SdkTdx, SplitCollateralFilesAndCertificateAndCrlInputs) {
  CLOISTER_REQUIRE_TDX_FACTS();
  VerifyRequest r;
  r.evidence = tdx_vector("gtg/quote_v5_tdx15.dat");
  r.collateral = {tdx_vector("gtg/tcbinfo_90c06f000000.json"),
                  tdx_vector("gtg/qeidentity_td_qe.json")};
  r.certificates = {tdx_vector("gtg/tcb_signing_issuer_chain.pem")};
  r.crls = {tdx_vector("gtg/pckcrl_platform.der"), tdx_vector("gtg/rootcrl.der")};
  r.time = 1771200000;  // 2026-02-16: the TCB Info is current, the rest is not
  r.policy = *policy::parse_policy(R"({"tdx": {"collateral": {"allow_stale": true}}})");
  auto v = Verifier().verify(r);
  ASSERT_TRUE(v) << v.error().message();
  // The 2018 TCB Signing certificate expired in 2025: Intel renewed it with the same key, but
  // this bundle carries the old one. Its signatures still verify, so only the certificate fails.
  EXPECT_EQ(v->checks.failures(), std::vector<std::string>{"tdx.collateral.signing_cert"});
  EXPECT_EQ(v->report["tcb"]["status"], "UpToDate");
  EXPECT_EQ(v->report["tcb"]["relaunch_checked"], true);
}

// A verifier parses collateral bytes once; a later request giving the same bytes as another
// input still sees them named after its own input.
TEST(SdkTdx, RememberedCollateralIsNamedAfterEachRequestsInput) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const Verifier verifier;
  auto first = verifier.verify(phala_request());
  ASSERT_TRUE(first) << first.error().message();
  const std::string first_dump = first->to_json().dump();
  EXPECT_NE(first_dump.find("from collateral input 1 "), std::string::npos) << first_dump;
  auto r = phala_request();
  r.collateral.insert(r.collateral.begin(), tdx_vector("gtg/tcb_signing_issuer_chain.pem"));
  auto second = verifier.verify(r);
  ASSERT_TRUE(second) << second.error().message();
  const std::string second_dump = second->to_json().dump();
  EXPECT_NE(second_dump.find("from collateral input 2 "), std::string::npos) << second_dump;
  EXPECT_EQ(second_dump.find("from collateral input 1 "), std::string::npos) << second_dump;
}

TEST(SdkTdx, EventLogEventsAreInTheReport) {
  CLOISTER_REQUIRE_TDX_FACTS();
  VerifyRequest r;
  r.evidence = tdx_vector("gtg/quote_v4_cos113.dat");
  r.event_log = tdx_vector("gtg/ccel_cos113_eventlog.bin");
  r.time = kPhalaTime;
  auto v = Verifier().verify(r);
  ASSERT_TRUE(v);
  const auto& log = v->report["event_log"];
  ASSERT_EQ(log["events"].size(), 43u);
  EXPECT_EQ(log["events"][14]["type"], "EV_EFI_ACTION");
  EXPECT_EQ(log["events"][14]["digest_check"], "matches");
  EXPECT_EQ(log["events"][14]["rtmr"], 1);
  const auto& facts = tdx_facts()["eventlogs"][0]["replayed"];
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(log["replayed"]["rtmr" + std::to_string(i)]["value"],
              facts["RTMR" + std::to_string(i)]);
  }
  EXPECT_EQ(v->checks.find("tdx.eventlog.rtmr2")->status, attestation::CheckStatus::kPass);
}

TEST(SdkTdx, InputsTheTeeDoesNotTakeAreErrors) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto r = phala_request();
  r.product = "Milan";
  EXPECT_EQ(Verifier().verify(r).error().message(),
            "a product name applies to SEV-SNP reports; TDX quotes have none");
  r = phala_request();
  r.cert_table = Bytes{1};
  EXPECT_FALSE(Verifier().verify(r));
  r = phala_request();
  r.collateral.push_back(Bytes{'{', '}'});
  EXPECT_EQ(Verifier().verify(r).error().message().rfind("collateral input 2: ", 0), 0u);
  r = phala_request();
  r.tee = "sgx";
  EXPECT_EQ(Verifier().verify(r).error().message(),
            "tee: expected \"snp\", \"tdx\", \"az-snp-vtpm\" or \"az-tdx-vtpm\", found \"sgx\"");
  // Forcing SNP on a quote gives an SNP verdict that fails its format check.
  r = phala_request();
  r.tee = "snp";
  r.collateral.clear();
  auto snp = Verifier().verify(r);
  ASSERT_TRUE(snp);
  EXPECT_EQ(snp->tee, "snp");
  EXPECT_EQ(snp->checks.find("snp.report.format")->status, attestation::CheckStatus::kFail);
  // Collateral with an SNP report.
  CLOISTER_REQUIRE_SNP_FACTS();
  VerifyRequest s;
  s.evidence = cloister::testing::snp_report_bytes("genoa_v5_vcek_report.oak.bin");
  s.collateral.push_back(tdx_vector("phala/tdx_quote_collateral.json"));
  EXPECT_EQ(Verifier().verify(s).error().message(),
            "collateral (TCB Info, QE Identity) applies to TDX quotes, not SEV-SNP reports");
}

struct Owned {
  char* p = nullptr;
  ~Owned() { cloister_free(p); }
};

TEST(CApiTdx, NewFieldsAndOldCallers) {
  CLOISTER_REQUIRE_TDX_FACTS();
  cloister_verifier* verifier = nullptr;
  ASSERT_EQ(
      cloister_verifier_new(R"({"pcs_url": "https://pccs.example:8081"})", &verifier, nullptr),
      CLOISTER_PASS);
  Bytes quote = tdx_vector("phala/quote_v4_b0c06f.dat");
  Bytes collateral = tdx_vector("phala/tdx_quote_collateral.json");
  cloister_bytes inputs[] = {{collateral.data(), collateral.size()}};
  cloister_verify_request request{};
  request.struct_size = sizeof request;
  request.evidence = {quote.data(), quote.size()};
  request.time = kPhalaTime;
  request.collateral = inputs;
  request.collateral_count = 1;
  {
    Owned out;
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_PASS);
    auto j = nlohmann::json::parse(out.p);
    EXPECT_EQ(j["tee"], "tdx");
    EXPECT_EQ(j["report"]["tcb"]["status"], "UpToDate");
  }
  {
    // A caller built against 0.1 sends the shorter struct: the fields after `time` are not
    // read (here they would add the collateral), so the same quote has no collateral.
    Owned out;
    request.struct_size = CLOISTER_VERIFY_REQUEST_V1_SIZE;
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_FAIL);
    auto j = nlohmann::json::parse(out.p);
    EXPECT_EQ(j["tee"], "tdx");
    EXPECT_TRUE(j["report"]["collateral"].is_null());
  }
  {
    Owned out;
    request.struct_size = sizeof request;
    request.tee = "sev";
    EXPECT_EQ(cloister_verify(verifier, &request, &out.p), CLOISTER_EINVAL);
    EXPECT_EQ(nlohmann::json::parse(out.p)["error"],
              "tee: expected \"snp\", \"tdx\", \"az-snp-vtpm\" or \"az-tdx-vtpm\", found \"sev\"");
  }
  cloister_verifier_free(verifier);
  EXPECT_EQ(CLOISTER_VERIFY_REQUEST_V1_SIZE, offsetof(cloister_verify_request, tee));
}

// ---- verify-report ---------------------------------------------------------------------------

cloister::testing::CommandResult run(const std::string& args) {
  return cloister::testing::run_command(std::string(VERIFY_REPORT) + " " + args);
}

std::string v(const std::string& file) {
  return (*cloister::testing::vectors_dir() / "tdx" / file).string();
}

// The phala quote with its collateral bundle (a function: the vectors may be absent).
std::string phala_args() {
  return v("phala/quote_v4_b0c06f.dat") + " --collateral " + v("phala/tdx_quote_collateral.json");
}
const std::string kAt = " --at 2025-07-01T00:00:00Z";

TEST(VerifyReportTdx, DetectsTdxAndPasses) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto ok = run(phala_args() + kAt);
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("(Intel TDX)"), std::string::npos);
  EXPECT_NE(ok.out.find("verdict: PASS"), std::string::npos);
  auto json = run(phala_args() + kAt + " --json");
  EXPECT_EQ(json.status, 0);
  EXPECT_EQ(nlohmann::json::parse(json.out)["tee"], "tdx");
  // The production example policy pins this TD.
  EXPECT_EQ(run(phala_args() + kAt + " --policy " + std::string(CLOISTER_SOURCE_DIR) +
                "/policies/examples/production-tdx.json")
                .status,
            0);
  // Today the collateral is expired: a failed verification, not a usage error.
  auto today = run(phala_args());
  EXPECT_EQ(today.status, 1);
  EXPECT_NE(today.out.find("FAIL  tdx.collateral.tcb_info"), std::string::npos);
}

TEST(VerifyReportTdx, OverridesMapToTheTdxPolicy) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const std::string mr_td = tdx_facts()["quotes"][3]["td_report"]["mr_td"];
  EXPECT_EQ(run(phala_args() + kAt + " --measurement " + mr_td).status, 0);
  auto wrong = run(phala_args() + kAt + " --measurement " + std::string(96, 'a'));
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.out.find("FAIL  policy.tdx.mr_td"), std::string::npos);
  auto data = run(phala_args() + kAt + " --report-data " + std::string(128, '0') + " --json");
  EXPECT_EQ(data.status, 1);
  auto j = nlohmann::json::parse(data.out);
  bool report_data_failed = false;
  for (const auto& c : j["checks"])
    if (c["name"] == "policy.tdx.report_data") report_data_failed = c["status"] == "fail";
  EXPECT_TRUE(report_data_failed);
  EXPECT_EQ(run(phala_args() + kAt + " --host-data " + std::string(64, '0')).status, 2);
}

TEST(VerifyReportTdx, UsageAndUnreadableInputExitTwo) {
  CLOISTER_REQUIRE_TDX_FACTS();
  EXPECT_EQ(run(phala_args() + " --collateral /nonexistent.json").status, 2);
  EXPECT_EQ(run(phala_args() + " --event-log /nonexistent.bin").status, 2);
  EXPECT_EQ(run(phala_args() + " --tee sgx").status, 2);
  auto bad = run(phala_args() + " --collateral " + v("gtg/quote_v4_cos113.dat"));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("collateral input 2: not TDX collateral"), std::string::npos) << bad.out;
  EXPECT_EQ(run(phala_args() + " --product Milan").status, 2);
  // A TDX quote forced through the SNP verifier fails verification.
  EXPECT_EQ(run(v("phala/quote_v4_b0c06f.dat") + " --tee snp").status, 1);
}

TEST(VerifyReportTdx, EventLogReplay) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto r =
      run(v("gtg/quote_v4_cos113.dat") + " --event-log " + v("gtg/ccel_cos113_eventlog.bin") + kAt);
  EXPECT_EQ(r.status, 1);  // no collateral for this platform in the vectors
  for (int i = 0; i < 4; ++i)
    EXPECT_NE(r.out.find("PASS  tdx.eventlog.rtmr" + std::to_string(i)), std::string::npos);
}

}  // namespace
}  // namespace cloister::sdk
