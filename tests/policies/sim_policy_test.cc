// Platforms below a policy's minimum, launched on the simulated secure processor: the evidence
// verifies (the vendor chain is sound) and the policy refuses it by name.
#include <gtest/gtest.h>

#include "cloister/attestation/sim/snp_firmware.h"
#include "cloister/attestation/sim/tdx_module.h"
#include "cloister/attestation/snp/cert_table.h"
#include "cloister/policy/snp.h"
#include "cloister/policy/tdx.h"
#include "support/sim_state.h"

namespace cloister::policy {
namespace {

namespace sim = attestation::sim;
namespace snp = attestation::snp;
namespace tdx = attestation::tdx;
using attestation::Checks;
using cloister::testing::shared_sim_state;

// A report from a guest of `platform`, verified against the platform's simulated root.
snp::SnpVerification snp_evidence(const sim::SimulatedSnp& platform) {
  sim::SnpGuest guest(platform, {});
  Bytes payload(snp::guest_msg::kReportReqSize, 0);
  sim::GuestMessageHeader h;
  h.seqno = 1;
  h.msg_type = snp::guest_msg::kTypeReportReq;
  const auto result =
      guest.guest_request(sim::seal_guest_message(h, payload, guest.vmpck(0)).value());
  const auto response = sim::parse_guest_message(result.response).value();
  const Bytes plain = sim::open_guest_message(response, guest.vmpck(0)).value();
  snp::SnpEvidence e;
  e.report.assign(plain.begin() + snp::guest_msg::kReportRspReport, plain.end());
  for (const auto& entry : snp::parse_cert_table(platform.certificate_table()).value())
    e.certificates.push_back({attestation::Certificate::from_der(entry.data).value(), "table"});
  snp::SnpVerifyOptions options;
  options.time = unix_now();
  auto v = snp::SnpVerifier({nullptr, {platform.amd().ca()}, {}}).verify(e, options);
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{});
  return v;
}

TEST(SimulatedPlatforms, AnSnpTcbBelowThePolicyMinimumIsRefused) {
  sim::SnpPlatformConfig old;
  old.current_tcb = {.fmc = std::nullopt, .bl = 7, .tee = 0, .snp = 14, .ucode = 72};
  old.reported_tcb = old.committed_tcb = old.launch_tcb = old.current_tcb;
  SnpPolicy policy = default_snp_policy();
  policy.minimum_reported_tcb.snp = 22;
  policy.minimum_reported_tcb.ucode = 80;

  Checks current;
  evaluate_snp_policy(policy, snp_evidence(sim::SimulatedSnp::open(shared_sim_state(), {}).value()),
                      current);
  EXPECT_TRUE(current.passed());
  Checks below;
  evaluate_snp_policy(
      policy, snp_evidence(sim::SimulatedSnp::open(shared_sim_state(), old).value()), below);
  EXPECT_EQ(below.failures(), std::vector<std::string>{"policy.tcb.reported"});
}

tdx::TdxVerification tdx_evidence(const sim::SimulatedTdx& platform) {
  tdx::TdInfo td;
  td.attributes = 0x10000000;  // SEPT_VE_DISABLE, which the default policy requires
  tdx::TdxEvidence e;
  e.quote = platform.quote(platform.report(td, {})).value();
  EXPECT_TRUE(tdx::add_collateral(as_bytes(platform.collateral()), "simulated PCS", e.collateral));
  tdx::TdxVerifyOptions options;
  options.time = unix_now();
  auto v =
      tdx::TdxVerifier({nullptr, {platform.intel().root().cert.public_key()}}).verify(e, options);
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{});
  return v;
}

TEST(SimulatedPlatforms, AVulnerableTdxPlatformIsRefusedByTheDefaultPolicy) {
  Checks current;
  evaluate_tdx_policy(default_tdx_policy(),
                      tdx_evidence(sim::SimulatedTdx::open(shared_sim_state(), {}).value()),
                      current);
  EXPECT_TRUE(current.passed());
  sim::TdxPlatformConfig config;
  config.vulnerable = true;
  Checks vulnerable;
  evaluate_tdx_policy(default_tdx_policy(),
                      tdx_evidence(sim::SimulatedTdx::open(shared_sim_state(), config).value()),
                      vulnerable);
  EXPECT_EQ(vulnerable.failures(), std::vector<std::string>{"policy.tdx.tcb_status"});
  EXPECT_EQ(vulnerable.find("policy.tdx.tcb_status")->found.rfind("OutOfDate", 0), 0u);
}

}  // namespace
}  // namespace cloister::policy
