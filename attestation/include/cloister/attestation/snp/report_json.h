// Every field of an SNP report as JSON: byte strings and bit fields as lower-case hex strings,
// small counters as numbers, bit fields also decoded. TCBs are decoded when the product is known.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "cloister/attestation/snp/report.h"

namespace cloister::attestation::snp {

nlohmann::json snp_report_to_json(const SnpReport& report, std::optional<Product> product);

}  // namespace cloister::attestation::snp
