// The SNP vector facts (../shared/vectors/snp/expected_facts.json) for data-driven tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cloister/attestation/snp/report.h"
#include "cloister/common/time.h"
#include "support/vectors.h"

namespace cloister::testing {

// expected_facts.json, or null when the vectors are absent.
const nlohmann::json& snp_facts();

// The report bytes of a facts entry (the first 1184 bytes for report+table files).
Bytes snp_report_bytes(const std::string& file);

// 2025-11-01T00:00:00Z: inside every shared certificate's and CRL's validity window.
inline constexpr UnixTime kSnpVectorTime = 1761955200;

}  // namespace cloister::testing

#define CLOISTER_REQUIRE_SNP_FACTS()              \
  if (::cloister::testing::snp_facts().is_null()) \
  GTEST_SKIP() << ::cloister::testing::vectors_missing_message("snp/expected_facts.json")
