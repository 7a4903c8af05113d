// Appraisal of a verified Intel TDX quote against a TdxPolicy.
#pragma once

#include "cloister/attestation/tdx/verify.h"
#include "cloister/attestation/verdict.h"
#include "cloister/policy/policy.h"

namespace cloister::policy {

// Appends one "policy.tdx.*" check per rule that applies: the always-on rules (debug,
// TD_ATTRIBUTES, accepted TCB statuses) and each rule the policy sets. Needs
// verification.quote; the TCB status, advisory and collateral-age rules also need the
// verification's TCB evaluation and collateral (and fail without them).
void evaluate_tdx_policy(const TdxPolicy& policy,
                         const attestation::tdx::TdxVerification& verification,
                         attestation::Checks& out);

// The verifier options a policy implies (stale collateral); time comes from the caller.
void apply_tdx_policy_options(const TdxPolicy& policy, attestation::tdx::TdxVerifyOptions& options);

}  // namespace cloister::policy
