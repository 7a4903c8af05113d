#include "fake_amd.h"

#include <gtest/gtest.h>

#include "cloister/attestation/sim/config.h"
#include "cloister/attestation/sim/snp_firmware.h"
#include "support/sim_state.h"

namespace cloister::testing {
namespace {

namespace sim = attestation::sim;
namespace snp = attestation::snp;

}  // namespace

FakeAmd::FakeAmd(Product product)
    : amd_(sim::SimulatedAmd::open(shared_sim_state(), product).value()) {}

FakeVek FakeAmd::vcek(const VekSpec& spec) const {
  return sim::issue_vek({snp::VekKind::kVcek,
                         amd_.product(),
                         spec.tcb,
                         spec.hw_id,
                         {},
                         spec.not_before,
                         spec.not_after},
                        amd_.ask())
      .value();
}

FakeVek FakeAmd::vlek(const VekSpec& spec) const {
  return sim::issue_vek({snp::VekKind::kVlek,
                         amd_.product(),
                         spec.tcb,
                         {},
                         spec.csp_id,
                         spec.not_before,
                         spec.not_after},
                        amd_.asvk())
      .value();
}

Crl FakeAmd::crl(const std::vector<Bytes>& revoked, UnixTime this_update,
                 UnixTime next_update) const {
  return sim::issue_crl({revoked, this_update, next_update}, amd_.ark().cert, amd_.ark().key,
                        sim::SignatureScheme::kRsaPssSha384)
      .value();
}

Crl FakeAmd::crl_signed_by_ask(UnixTime this_update, UnixTime next_update) const {
  return sim::issue_crl({{}, this_update, next_update}, amd_.ark().cert, amd_.ask().key,
                        sim::SignatureScheme::kRsaPssSha384)
      .value();
}

void sign_report(Bytes& report, const FakeVek& vek) {
  auto decoded = snp::decode_snp_report(report).value();
  ASSERT_TRUE(sim::sign_snp_report(decoded, vek.key));
  report.assign(decoded.raw.begin(), decoded.raw.end());
}

Bytes make_signed_report(Product product, const FakeVek& vek, std::uint64_t tcb_raw,
                         ByteView chip_id, std::uint32_t signer_info) {
  snp::SnpReport r;
  r.version = 3;
  r.policy = 0x30000;
  r.signature_algo = snp::kSignatureAlgoEcdsaP384Sha384;
  r.signer_info = signer_info;
  r.current_tcb = r.reported_tcb = r.committed_tcb = r.launch_tcb = snp::TcbVersion(tcb_raw);
  r.cpuid = sim::simulated_cpuid(product);
  std::copy(chip_id.begin(), chip_id.end(), r.chip_id.begin());
  r.report_id_ma.fill(0xff);
  r.current_version = r.committed_version = {1, 55, 0};
  EXPECT_TRUE(sim::sign_snp_report(r, vek.key));
  return Bytes(r.raw.begin(), r.raw.end());
}

}  // namespace cloister::testing
