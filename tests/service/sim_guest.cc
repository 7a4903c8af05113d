#include "sim_guest.h"

#include "cloister/common/hex.h"
#include "cloister/service/evidence.h"
#include "support/sim_state.h"

namespace cloister::service::testing {

namespace sim = attestation::sim;

const sim::SimulatedSnp& genoa() {
  static const sim::SimulatedSnp platform =
      sim::SimulatedSnp::open(cloister::testing::shared_sim_state(), {}).value();
  return platform;
}

sim::SnpLaunch launch_with(std::uint8_t measurement_byte, std::uint64_t policy) {
  sim::SnpLaunch launch;
  launch.measurement.fill(measurement_byte);
  launch.policy = policy;
  return launch;
}

std::string reference_values(std::uint8_t measurement_byte) {
  return R"({"version":1,"snp":{"measurements":[")" + to_hex(Bytes(48, measurement_byte)) +
         R"("]}})";
}

nlohmann::json snp_evidence(const sim::SnpLaunch& launch, const kbs::ReportData& report_data) {
  std::array<std::uint8_t, 32> report_id{};
  report_id.fill(0x11);
  const auto report = genoa().report(launch, report_id, 0, report_data).value();
  evidence::SnpEvidence e;
  e.report.assign(report.raw.begin(), report.raw.end());
  e.cert_chain =
      std::vector<evidence::SnpCertificate>{{"VCEK", std::nullopt, genoa().vcek().cert.der()},
                                            {"ASK", std::nullopt, genoa().amd().ask().cert.der()}};
  return evidence::snp_evidence_to_json(e).value();
}

}  // namespace cloister::service::testing
