#include <gtest/gtest.h>

#include "cloister/common/hex.h"
#include "cloister/policy/tdx.h"
#include "fake_intel.h"
#include "tdx_facts.h"

namespace cloister::policy {
namespace {

using attestation::Checks;
using attestation::tdx::TcbStatus;
using attestation::tdx::TdxEvidence;
using attestation::tdx::TdxVerification;
using attestation::tdx::TdxVerifier;
using attestation::tdx::TdxVerifyOptions;
using cloister::testing::tdx_facts;
using cloister::testing::verify_fact_pair;

// The phala v4 quote against its collateral: UpToDate, every check passing.
TdxVerification phala() {
  const auto& f = tdx_facts()["quotes"][3];
  EXPECT_EQ(f["name"], "phala_v4_b0c06f");
  auto v = verify_fact_pair(f, f["against_collateral"][0]);
  EXPECT_TRUE(v.checks.passed());
  return v;
}

std::string td(const char* field) {
  return tdx_facts()["quotes"][3]["td_report"][field];
}

TdxPolicy policy(const std::string& tdx_json) {
  auto p = parse_policy(R"({"tdx": )" + tdx_json + "}");
  EXPECT_TRUE(p) << p.error().message();
  return p && p->tdx ? *p->tdx : default_tdx_policy();
}

Checks evaluate(const TdxPolicy& p, const TdxVerification& v) {
  Checks out;
  evaluate_tdx_policy(p, v, out);
  return out;
}

std::string error_of(const std::string& tdx_json) {
  auto p = parse_policy(R"({"tdx": )" + tdx_json + "}");
  return p ? "parsed" : p.error().message();
}

// The default policy on every real quote x collateral pair: it rejects exactly the quotes
// without SEPT_VE_DISABLE and the platforms whose TCB status is not UpToDate.
TEST(TdxPolicy, DefaultPolicyVerdictsOnRealQuotes) {
  CLOISTER_REQUIRE_TDX_FACTS();
  int pairs = 0;
  for (const auto& f : tdx_facts()["quotes"]) {
    if (!f.contains("against_collateral")) continue;
    for (const auto& a : f["against_collateral"]) {
      SCOPED_TRACE(f["name"].get<std::string>() + " + " +
                   a["collateral_set"]["tcbinfo"].get<std::string>());
      const TdxVerification v = verify_fact_pair(f, a);
      std::vector<std::string> want;
      const Bytes attributes = *from_hex(f["td_report"]["td_attributes"].get<std::string>());
      if (!(load_le64(attributes, 0) & (1u << 28))) want.push_back("policy.tdx.td_attributes");
      if (a["tcb_status_qvl_algorithm"]["final"] != "UpToDate")
        want.push_back("policy.tdx.tcb_status");
      EXPECT_EQ(evaluate(default_tdx_policy(), v).failures(), want);
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 5);
}

TEST(TdxPolicy, DebugTdsAreRejectedUnlessAllowed) {
  cloister::testing::FakeIntel fake;
  cloister::testing::QuoteSpec spec;
  spec.td_attributes = 0x10000001;
  TdxEvidence e;
  e.quote = fake.quote(fake.pck(), spec);
  e.collateral = fake.collateral(1767225600, 1769904000);
  TdxVerifyOptions o;
  o.time = 1768435200;
  const TdxVerification v = TdxVerifier({nullptr, {fake.root_key()}}).verify(e, o);
  EXPECT_TRUE(v.checks.passed());
  Checks c = evaluate(default_tdx_policy(), v);
  EXPECT_EQ(c.failures(), std::vector<std::string>{"policy.tdx.debug"});
  EXPECT_EQ(c.find("policy.tdx.debug")->detail,
            "the TD is under debug (DEBUG): the host can read or observe its state");
  EXPECT_TRUE(evaluate(policy(R"({"td_attributes": {"allow_debug": true}})"), v).passed());
}

// The other TUD bits (Intel: any of bits 0-7 set makes the TD untrusted) count as debug, and a
// migratable TD is refused unless the policy allows it.
TEST(TdxPolicy, ProfilingBitsAndMigratableTdsAreRejectedByDefault) {
  cloister::testing::FakeIntel fake;
  TdxVerifyOptions o;
  o.time = 1768435200;
  auto verify = [&](std::uint64_t attributes) {
    cloister::testing::QuoteSpec spec;
    spec.td_attributes = attributes;
    TdxEvidence e;
    e.quote = fake.quote(fake.pck(), spec);
    e.collateral = fake.collateral(1767225600, 1769904000);
    return TdxVerifier({nullptr, {fake.root_key()}}).verify(e, o);
  };
  const TdxVerification profiled = verify(0x10000000 | (1u << 5) | (1u << 2));
  Checks c = evaluate(default_tdx_policy(), profiled);
  EXPECT_EQ(c.failures(), std::vector<std::string>{"policy.tdx.debug"});
  EXPECT_EQ(c.find("policy.tdx.debug")->detail,
            "the TD is under debug (TUD bit 2, PERF_PROF): the host can read or observe its "
            "state");
  const TdxVerification migratable = verify(0x10000000 | (1u << 29));
  Checks m = evaluate(default_tdx_policy(), migratable);
  EXPECT_EQ(m.failures(), std::vector<std::string>{"policy.tdx.td_attributes"});
  EXPECT_EQ(m.find("policy.tdx.td_attributes")->detail, "MIGRATABLE is set");
  EXPECT_TRUE(
      evaluate(policy(R"({"td_attributes": {"allow_migratable": true}})"), migratable).passed());
}

TEST(TdxPolicy, MeasurementAllowlistsAndReportData) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const TdxVerification v = phala();
  const std::string other(96, 'a');
  for (const char* field : {"mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id", "mr_owner",
                            "mr_owner_config", "mr_seam", "mr_signer_seam"}) {
    SCOPED_TRACE(field);
    const std::string name = std::string("policy.tdx.") + field;
    Checks ok = evaluate(policy(std::string(R"({")") + field + R"(": [")" + other + R"(", ")" +
                                td(field) + R"("]})"),
                         v);
    EXPECT_TRUE(ok.passed());
    ASSERT_NE(ok.find(name), nullptr);
    Checks bad = evaluate(policy(std::string(R"({")") + field + R"(": [")" + other + R"("]})"), v);
    EXPECT_EQ(bad.failures(), std::vector<std::string>{name});
    EXPECT_EQ(bad.find(name)->found, td(field));
  }
  EXPECT_TRUE(evaluate(policy(R"({"report_data": ")" + td("report_data") + R"("})"), v).passed());
  Checks wrong = evaluate(policy(R"({"report_data": ")" + std::string(128, '0') + R"("})"), v);
  EXPECT_EQ(wrong.failures(), std::vector<std::string>{"policy.tdx.report_data"});
}

TEST(TdxPolicy, AttributesXfamAndTeeTcbSvn) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const TdxVerification v = phala();  // TD_ATTRIBUTES 0x10000000, XFAM 0x602e7, SVN 06 01 03
  EXPECT_TRUE(evaluate(policy(R"({"td_attributes": {"mask": "0xffffffff", "value": "0x10000000"},
                                  "xfam": {"value": "0x602e7"},
                                  "minimum_tee_tcb_svn": "06010300000000000000000000000000"})"),
                       v)
                  .passed());
  Checks mask = evaluate(policy(R"({"td_attributes": {"mask": "0x10000001", "value": "0x1"}})"), v);
  EXPECT_EQ(mask.failures(), std::vector<std::string>{"policy.tdx.td_attributes"});
  EXPECT_EQ(mask.find("policy.tdx.td_attributes")->detail, "masked TD_ATTRIBUTES are 0x10000000");
  Checks xfam = evaluate(policy(R"({"xfam": {"mask": "0xff", "value": "0x7"}})"), v);
  EXPECT_EQ(xfam.failures(), std::vector<std::string>{"policy.tdx.xfam"});
  Checks svn =
      evaluate(policy(R"({"minimum_tee_tcb_svn": "07010400000000000000000000000000"})"), v);
  EXPECT_EQ(svn.failures(), std::vector<std::string>{"policy.tdx.tee_tcb_svn"});
  EXPECT_EQ(svn.find("policy.tdx.tee_tcb_svn")->detail,
            "TEE_TCB_SVN below the policy minimum: byte 0 6 < 7, byte 2 3 < 4");
  // SEPT_VE_DISABLE can be waived; PKS can be forbidden.
  Checks sept = evaluate(policy(R"({"td_attributes": {"require_sept_ve_disable": false,
                                                       "allow_pks": false}})"),
                         v);
  EXPECT_TRUE(sept.passed());
  EXPECT_EQ(sept.find("policy.tdx.td_attributes")->expected, "PKS off, MIGRATABLE off");
}

TEST(TdxPolicy, AcceptedStatusesAdvisoriesAndCollateralAge) {
  cloister::testing::FakeIntel fake;
  cloister::testing::QuoteSpec old_module;
  old_module.tee_tcb_svn = {4, 1, 3};
  TdxEvidence e;
  e.quote = fake.quote(fake.pck(), old_module);
  e.collateral = fake.collateral(1767225600, 1769904000);  // issued 2026-01-01
  TdxVerifyOptions o;
  o.time = 1768435200;  // 2026-01-15
  const TdxVerification v = TdxVerifier({nullptr, {fake.root_key()}}).verify(e, o);
  ASSERT_EQ(v.tcb->status, TcbStatus::kOutOfDate);
  Checks d = evaluate(default_tdx_policy(), v);
  EXPECT_EQ(d.failures(), std::vector<std::string>{"policy.tdx.tcb_status"});
  EXPECT_EQ(d.find("policy.tdx.tcb_status")->detail,
            "the platform's TCB status is not one the policy accepts (advisories INTEL-SA-01099)");
  EXPECT_TRUE(
      evaluate(policy(R"({"accepted_tcb_statuses": ["UpToDate", "OutOfDate"]})"), v).passed());
  Checks adv = evaluate(policy(R"({"accepted_tcb_statuses": ["OutOfDate"],
                                   "accepted_advisory_ids": ["INTEL-SA-01036"]})"),
                        v);
  EXPECT_EQ(adv.failures(), std::vector<std::string>{"policy.tdx.advisories"});
  EXPECT_EQ(adv.find("policy.tdx.advisories")->detail,
            "the platform is affected by advisories the policy does not accept: INTEL-SA-01099");
  Checks age = evaluate(policy(R"({"accepted_tcb_statuses": ["OutOfDate"],
                                   "collateral": {"maximum_age_days": 10}})"),
                        v);
  EXPECT_EQ(age.failures(), std::vector<std::string>{"policy.tdx.collateral_age"});
  EXPECT_EQ(age.find("policy.tdx.collateral_age")->found,
            "TCB Info 14 days old, QE Identity 14 days old");
  EXPECT_TRUE(evaluate(policy(R"({"accepted_tcb_statuses": ["OutOfDate"],
                                  "collateral": {"maximum_age_days": 14}})"),
                       v)
                  .passed());
  // Without collateral nothing about the TCB can be accepted.
  TdxEvidence bare = e;
  bare.collateral = {};
  const TdxVerification unknown = TdxVerifier({nullptr, {fake.root_key()}}).verify(bare, o);
  Checks u = evaluate(
      policy(R"({"accepted_advisory_ids": [], "collateral": {"maximum_age_days": 1}})"), unknown);
  EXPECT_EQ(u.failures(),
            (std::vector<std::string>{"policy.tdx.tcb_status", "policy.tdx.advisories",
                                      "policy.tdx.collateral_age"}));
}

TEST(TdxPolicy, StaleCollateralOptionReachesTheVerifier) {
  TdxVerifyOptions o;
  apply_tdx_policy_options(default_tdx_policy(), o);
  EXPECT_FALSE(o.allow_stale_collateral);
  apply_tdx_policy_options(policy(R"({"collateral": {"allow_stale": true}})"), o);
  EXPECT_TRUE(o.allow_stale_collateral);
}

TEST(TdxPolicy, ErrorsNameTheJsonPath) {
  EXPECT_EQ(error_of(R"({"mr_td": ["00"]})"),
            "policy /tdx/mr_td/0: expected 48 bytes (96 hex digits), found 1 bytes");
  EXPECT_EQ(error_of(R"({"accepted_tcb_statuses": ["Revoked"]})"),
            "policy /tdx/accepted_tcb_statuses/0: 'Revoked' cannot be accepted (expected one of: "
            "ConfigurationAndSWHardeningNeeded, ConfigurationNeeded, OutOfDate, "
            "OutOfDateConfigurationNeeded, SWHardeningNeeded, TDRelaunchAdvised, "
            "TDRelaunchAdvisedConfigurationNeeded, UpToDate)");
  EXPECT_NE(error_of(R"({"accepted_tcb_statuses": ["uptodate"]})")
                .find("policy /tdx/accepted_tcb_statuses/0: unknown TCB status 'uptodate'"),
            std::string::npos);
  EXPECT_EQ(error_of(R"({"xfam": {"mask": "0xff"}})"),
            "policy /tdx/xfam/value: required (the bits the masked XFAM must equal)");
  EXPECT_EQ(error_of(R"({"td_attributes": {"mask": "0x1", "value": "0x3"}})"),
            "policy /tdx/td_attributes/value: sets bits outside mask");
  EXPECT_EQ(error_of(R"({"minimum_tee_tcb_svn": "0601"})"),
            "policy /tdx/minimum_tee_tcb_svn: expected 16 bytes (32 hex digits), found 2 bytes");
  EXPECT_EQ(error_of(R"({"collateral": {"maximum_age_days": -1}})"),
            "policy /tdx/collateral/maximum_age_days: expected a non-negative integer");
  EXPECT_NE(error_of(R"({"rtmr4": []})").find("policy /tdx: unknown key 'rtmr4'"),
            std::string::npos);
}

TEST(TdxPolicy, ProductionExampleAcceptsThePhalaQuote) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto p = load_policy(std::string(CLOISTER_SOURCE_DIR) + "/policies/examples/production-tdx.json");
  ASSERT_TRUE(p && p->tdx) << (p ? "no tdx section" : p.error().message());
  Checks c = evaluate(*p->tdx, phala());
  EXPECT_TRUE(c.passed()) << c.failures().front();
  // Six allowlists, then debug, attributes, XFAM, TEE_TCB_SVN, status, advisories, age.
  EXPECT_EQ(c.all().size(), 13u);
}

}  // namespace
}  // namespace cloister::policy
