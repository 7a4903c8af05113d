// A verified TDX quote as JSON: every header, TD report and QE report field (byte strings as
// lower-case hex in quote byte order; TD_ATTRIBUTES and XFAM also as "0x…" u64 values and
// decoded bits), the PCK certificate's SGX extensions, the TCB evaluation with every
// intermediate status, the collateral used, and the event log's events and replayed RTMRs.
#pragma once

#include <nlohmann/json.hpp>

#include "cloister/attestation/tdx/verify.h"

namespace cloister::attestation::tdx {

// Null when the verification has no quote.
nlohmann::json tdx_report_to_json(const TdxVerification& verification);

}  // namespace cloister::attestation::tdx
