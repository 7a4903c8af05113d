// Simulated SEV-SNP guests for the service's tests: evidence in the KBS wire form, signed by the
// shared simulated Genoa host (tests/support/sim_state.h), for a REPORT_DATA the test chooses.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "cloister/attestation/sim/snp_firmware.h"
#include "cloister/service/report_data.h"

namespace cloister::service::testing {

// The shared simulated Genoa host; its ARK is the trust root the service needs.
const attestation::sim::SimulatedSnp& genoa();

// A launch whose MEASUREMENT is 48 bytes of `measurement_byte`, with GUEST_POLICY `policy`.
attestation::sim::SnpLaunch launch_with(std::uint8_t measurement_byte,
                                        std::uint64_t policy = 0x30000);

// Reference values (a policy document) accepting exactly that measurement.
std::string reference_values(std::uint8_t measurement_byte);

// primary_evidence for `launch` binding `report_data`: the report and a VCEK + ASK cert_chain.
nlohmann::json snp_evidence(const attestation::sim::SnpLaunch& launch,
                            const kbs::ReportData& report_data);

}  // namespace cloister::service::testing
