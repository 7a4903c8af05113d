// Appraisal of a verified SEV-SNP report against an SnpPolicy.
#pragma once

#include "cloister/attestation/snp/verify.h"
#include "cloister/attestation/verdict.h"
#include "cloister/policy/policy.h"

namespace cloister::policy {

// Appends one "policy.*" check per rule that applies: the always-on rules (debug, migration
// agent, SMT and CXL guest-policy bits, VMPL, provisional firmware, signing key) and each rule
// the policy sets. Needs verification.report; TCB minimums also need the product.
void evaluate_snp_policy(const SnpPolicy& policy,
                         const attestation::snp::SnpVerification& verification,
                         attestation::Checks& out);

// The verifier options a policy implies (revocation strictness); time and product come from
// the caller.
void apply_snp_policy_options(const SnpPolicy& policy, attestation::snp::SnpVerifyOptions& options);

}  // namespace cloister::policy
