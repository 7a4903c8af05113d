// Appraisal of verified Azure vTPM evidence against an AzurePolicy (the hardware report inside
// it is appraised by evaluate_snp_policy() or evaluate_tdx_policy()).
#pragma once

#include "cloister/attestation/azure/verify.h"
#include "cloister/attestation/verdict.h"
#include "cloister/policy/policy.h"

namespace cloister::policy {

// Appends one "policy.azure.*" check per rule the policy sets: policy.azure.pcr<N> (the PCR's
// value, verified by the quote, is in the allowlist), policy.azure.vm_configuration.<flag>,
// policy.azure.vm_unique_id, policy.azure.user_data, policy.azure.user_data_nonce (the
// verifier's azure.runtime_data.user_data check, already in `out`, ran and passed). A rule whose
// input the evidence does not establish (PCR values the quote did not verify, runtime data that
// did not parse) fails.
void evaluate_azure_policy(const AzurePolicy& policy,
                           const attestation::azure::VtpmVerification& verification,
                           attestation::Checks& out);

}  // namespace cloister::policy
