#include <gtest/gtest.h>

#include "cloister/common/hex.h"
#include "cloister/policy/snp.h"
#include "snp_facts.h"

namespace cloister::policy {
namespace {

using attestation::Checks;
using attestation::CheckStatus;
using attestation::snp::SnpEvidence;
using attestation::snp::SnpVerification;
using attestation::snp::SnpVerifier;
using attestation::snp::SnpVerifyOptions;
using cloister::testing::kSnpVectorTime;
using cloister::testing::read_vector;
using cloister::testing::snp_facts;
using cloister::testing::snp_report_bytes;
using cloister::testing::vector_path;

SnpVerification verified(const std::string& file) {
  const auto& f = snp_facts()["reports"][file];
  SnpEvidence e;
  e.report = snp_report_bytes(file);
  std::string vek = f["signature_verifies_with"].items().begin().key();
  for (auto& c : *attestation::parse_certificates(read_vector(*vector_path("snp/" + vek))))
    e.certificates.push_back({c, vek});
  SnpVerifyOptions o;
  o.time = kSnpVectorTime;
  auto v = SnpVerifier().verify(e, o);
  EXPECT_TRUE(v.checks.passed()) << file;
  return v;
}

Checks evaluate(const SnpPolicy& p, const SnpVerification& v) {
  Checks out;
  evaluate_snp_policy(p, v, out);
  return out;
}

SnpPolicy policy(const std::string& snp_json) {
  auto p = parse_policy(R"({"snp": )" + snp_json + "}");
  EXPECT_TRUE(p) << p.error().message();
  return p && p->snp ? *p->snp : default_snp_policy();
}

std::vector<std::string> failures(const Checks& c) {
  return c.failures();
}

// MANIFEST.md: the default policy rejects the debug report, the committed != current report,
// and (VMPL 1, provisional firmware) the AWS VLEK report; the others pass.
TEST(SnpPolicy, DefaultPolicyVerdictsOnRealReports) {
  CLOISTER_REQUIRE_SNP_FACTS();
  const std::map<std::string, std::vector<std::string>> expected = {
      {"milan_v2_vcek_report.gosevguest.bin", {"policy.guest.debug"}},
      {"CONSTRUCTED_milan_v2_report_plus_certtable.bin", {"policy.guest.debug"}},
      {"milan_v2_vcek_report.trustee.bin", {"policy.firmware.provisional"}},
      {"milan_v3_vlek_report.trustee.bin", {"policy.firmware.provisional", "policy.vmpl"}},
      {"milan_v3_vcek_report.oak.bin", {}},
      {"genoa_v5_vcek_report.oak.bin", {}},
      {"turin_v5_vcek_report.oak.bin", {}},
  };
  for (const auto& [file, want] : expected) {
    SCOPED_TRACE(file);
    Checks c = evaluate(default_snp_policy(), verified(file));
    EXPECT_EQ(failures(c), want);
  }
  Checks debug = evaluate(default_snp_policy(), verified("milan_v2_vcek_report.gosevguest.bin"));
  EXPECT_EQ(debug.find("policy.guest.debug")->detail,
            "the guest policy permits DEBUG, which the appraisal policy forbids");
  Checks prov = evaluate(default_snp_policy(), verified("milan_v2_vcek_report.trustee.bin"));
  EXPECT_EQ(prov.find("policy.firmware.provisional")->found,
            "committed 1.52.4 TCB 0300000000000873, current 1.52.4 TCB 03000000000008ce");
}

TEST(SnpPolicy, OptionsThatAcceptTheRejectedReports) {
  CLOISTER_REQUIRE_SNP_FACTS();
  EXPECT_TRUE(evaluate(policy(R"({"guest_policy": {"allow_debug": true}})"),
                       verified("milan_v2_vcek_report.gosevguest.bin"))
                  .passed());
  EXPECT_TRUE(evaluate(policy(R"({"allow_provisional_firmware": true})"),
                       verified("milan_v2_vcek_report.trustee.bin"))
                  .passed());
  EXPECT_TRUE(evaluate(policy(R"({"allow_provisional_firmware": true, "vmpl": [1]})"),
                       verified("milan_v3_vlek_report.trustee.bin"))
                  .passed());
}

TEST(SnpPolicy, MeasurementAndExactFields) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto v = verified("milan_v2_vcek_report.trustee.bin");
  const auto& f = snp_facts()["reports"]["milan_v2_vcek_report.trustee.bin"];
  std::string m = f["measurement"];
  std::string other(96, 'a');
  auto base = std::string(R"("allow_provisional_firmware": true)");
  EXPECT_TRUE(
      evaluate(policy("{" + base + R"(, "measurements": [")" + other + R"(", ")" + m + R"("]})"), v)
          .passed());
  Checks miss = evaluate(policy("{" + base + R"(, "measurements": [")" + other + R"("]})"), v);
  EXPECT_EQ(failures(miss), std::vector<std::string>{"policy.measurement"});
  EXPECT_EQ(miss.find("policy.measurement")->found, m);
  EXPECT_EQ(miss.find("policy.measurement")->detail,
            "MEASUREMENT is not in the policy's allowlist");

  std::string fam = "01" + std::string(30, '0'), img = "02" + std::string(30, '0');
  EXPECT_TRUE(evaluate(policy("{" + base + R"(, "family_id": ")" + fam + R"(", "image_id": ")" +
                              img + R"(", "report_data": ")" + f["report_data"].get<std::string>() +
                              R"(", "host_data": ")" + std::string(64, '0') +
                              R"(", "report_id": ")" + f["report_id"].get<std::string>() +
                              R"(", "report_id_ma": ")" + std::string(64, 'f') + R"("})"),
                       v)
                  .passed());
  Checks wrong = evaluate(policy("{" + base + R"(, "image_id": ")" + fam + R"(", "host_data": ")" +
                                 std::string(63, '0') + R"(1"})"),
                          v);
  EXPECT_EQ(failures(wrong), (std::vector<std::string>{"policy.host_data", "policy.image_id"}));
}

TEST(SnpPolicy, IdBlockAuthorKeyAndGuestSvn) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto trustee = verified("milan_v2_vcek_report.trustee.bin");  // ID block, GUEST_SVN 4
  std::string id_key = snp_facts()["reports"]["milan_v2_vcek_report.trustee.bin"]["id_key_digest"];
  auto base = std::string(R"("allow_provisional_firmware": true)");
  EXPECT_TRUE(evaluate(policy("{" + base + R"(, "id_key_digests": [")" + id_key +
                              R"("], "minimum_guest_svn": 4})"),
                       trustee)
                  .passed());
  EXPECT_EQ(failures(evaluate(
                policy("{" + base + R"(, "minimum_guest_svn": 5, "require_author_key": true})"),
                trustee)),
            (std::vector<std::string>{"policy.author_key", "policy.guest_svn"}));
  auto no_id = verified("genoa_v5_vcek_report.oak.bin");
  Checks c = evaluate(policy(R"({"require_id_block": true})"), no_id);
  EXPECT_EQ(c.find("policy.id_key")->detail, "the guest was launched without an ID block");
}

TEST(SnpPolicy, TcbMinimumsUseTheProductLayout) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto turin = verified("turin_v5_vcek_report.oak.bin");  // fmc 0, bl 1, tee 0, snp 2, ucode 71
  EXPECT_TRUE(
      evaluate(policy(R"({"minimum_tcb": {"reported": {"fmc": 0, "bl": 1, "snp": 2, "ucode": 71},
                                                 "launch": {"ucode": 70}}})"),
               turin)
          .passed());
  Checks low = evaluate(policy(R"({"minimum_tcb": {"current": {"snp": 3, "ucode": 72}}})"), turin);
  EXPECT_EQ(low.find("policy.tcb.current")->detail,
            "CURRENT_TCB below the policy minimum: snp 2 < 3, ucode 71 < 72");
  auto milan = verified("milan_v3_vcek_report.oak.bin");
  Checks fmc = evaluate(policy(R"({"minimum_tcb": {"committed": {"fmc": 1}}})"), milan);
  EXPECT_EQ(fmc.find("policy.tcb.committed")->detail,
            "COMMITTED_TCB below the policy minimum: fmc absent in Milan TCBs");
}

TEST(SnpPolicy, FirmwareGuestPolicyPlatformAndIdentity) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto genoa = verified("genoa_v5_vcek_report.oak.bin");  // 1.55.43, ABI 0.0, PI 0x25, mit 0x1
  EXPECT_TRUE(evaluate(policy(R"({"minimum_version": "1.55", "minimum_build": 43,
                                  "guest_policy": {"abi_minimum": "0.0"},
                                  "platform_info": {"require_ecc": true, "allow_tsme": false,
                                                    "require_alias_check_complete": true},
                                  "signing_keys": ["vcek"], "products": ["Genoa", "Turin"],
                                  "minimum_launch_mit_vector": 1,
                                  "minimum_current_mit_vector": "0x1"})"),
                       genoa)
                  .passed());
  Checks c = evaluate(policy(R"({"minimum_version": "1.56", "minimum_build": 44,
                                 "guest_policy": {"abi_minimum": "1.0", "allow_smt": false,
                                                  "require_single_socket": true},
                                 "platform_info": {"allow_smt": false, "require_rapl_disabled": true},
                                 "signing_keys": ["vlek"], "products": ["Milan"],
                                 "chip_ids": [")" +
                             std::string(128, '0') + R"("],
                                 "minimum_current_mit_vector": "0x3"})"),
                      genoa);
  EXPECT_EQ(failures(c), (std::vector<std::string>{
                             "policy.guest.smt", "policy.guest.single_socket", "policy.guest.abi",
                             "policy.firmware.build", "policy.firmware.version",
                             "policy.platform_info", "policy.chip_id", "policy.signing_key",
                             "policy.product", "policy.mit_vector.current"}));
  EXPECT_EQ(c.find("policy.platform_info")->detail, "SMT_EN is enabled; RAPL_DIS is not enabled");
  EXPECT_EQ(c.find("policy.mit_vector.current")->detail,
            "CURRENT_MIT_VECTOR lacks mitigation bits 0x2");
  Checks v3 = evaluate(policy(R"({"minimum_launch_mit_vector": 1})"),
                       verified("milan_v3_vcek_report.oak.bin"));
  EXPECT_EQ(v3.find("policy.mit_vector.launch")->detail,
            "LAUNCH_MIT_VECTOR exists only in report version 5 and later (this is v3)");
}

TEST(SnpPolicy, RevocationOptionsReachTheVerifier) {
  attestation::snp::SnpVerifyOptions o;
  apply_snp_policy_options(
      policy(R"({"revocation": {"require_crl": true, "allow_stale_crl": true}})"), o);
  EXPECT_TRUE(o.require_crl);
  EXPECT_TRUE(o.allow_stale_crl);
}

}  // namespace
}  // namespace cloister::policy
