// Reference values in the appraisal policy format the verifier reads (docs/measure.md,
// "Policy output"): {"snp": {"measurements": [hex, ...]}} or {"tdx": {"mr_td": [hex, ...]}}.
#pragma once

#include <span>
#include <string>

#include "cloister/common/sha.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::measure {

// The policy document allowing exactly `digests` for `tee`, pretty-printed JSON with a
// trailing newline. Digests are lower-case hex in report byte order.
std::string reference_values_policy(fw::Tee tee, std::span<const Sha384Digest> digests);

}  // namespace cloister::measure
