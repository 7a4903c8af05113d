// Telling Cloister's simulated secure processor (cloister::attestation_sim) from real hardware:
// every certificate of its simulated vendor hierarchies carries this organizational unit in its
// subject, alongside names shaped like AMD's and Intel's.
#pragma once

#include "cloister/attestation/x509.h"

namespace cloister::attestation {

inline constexpr char kSimulatedOrganizationalUnit[] = "Cloister Simulated Secure Processor";

// True when the certificate's subject OU is kSimulatedOrganizationalUnit.
inline bool is_simulated(const Certificate& cert) {
  return cert.subject_attribute("OU") == kSimulatedOrganizationalUnit;
}

}  // namespace cloister::attestation
