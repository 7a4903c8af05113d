// The TDX vector facts (../shared/vectors/tdx/expected.json) for data-driven tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/verify.h"
#include "cloister/common/time.h"
#include "support/vectors.h"

namespace cloister::testing {

// expected.json, or null when the vectors are absent.
const nlohmann::json& tdx_facts();

// A file under tdx/ in the vectors.
Bytes tdx_vector(const std::string& relative);

// The collateral a facts entry's "collateral_set" names, loaded with add_collateral().
attestation::tdx::TdxCollateral tdx_collateral_set(const nlohmann::json& collateral_set);

// A verification time for a quote x collateral pair: the middle of the window in which every
// item is valid, or, where no such window exists (gtg v5 pairs 2026 TCB Info with 2023
// collateral), the middle of the TCB Info's own window.
UnixTime tdx_pinned_time(const nlohmann::json& against);

// A facts quote (an entry of "quotes") verified by a default TdxVerifier against one entry of
// its "against_collateral", at that entry's tdx_pinned_time().
attestation::tdx::TdxVerification verify_fact_pair(const nlohmann::json& quote,
                                                   const nlohmann::json& against);

// Whether the facts say the validity item (e.g. "pckCrl", "pck_chain.leaf") is valid at `t`.
bool tdx_item_valid_at(const nlohmann::json& against, const std::string& item, UnixTime t);

}  // namespace cloister::testing

#define CLOISTER_REQUIRE_TDX_FACTS()              \
  if (::cloister::testing::tdx_facts().is_null()) \
  GTEST_SKIP() << ::cloister::testing::vectors_missing_message("tdx/expected.json")
