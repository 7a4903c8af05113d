// AMD EPYC product lines as the SEV-SNP certificate infrastructure (KDS) names them, and the
// TCB_VERSION layout each uses.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister::attestation::snp {

enum class Product {
  kMilan,   // Zen 3, family 0x19 models 0x00-0x0F
  kGenoa,   // Zen 4, family 0x19 models 0x10-0x1F; also Zen 4c Bergamo/Siena (0xA0-0xAF)
  kTurin,   // Zen 5, family 0x1A models 0x00-0x11
  kVenice,  // Zen 6, family 0x1A; recognised, but AMD has published no ARK for it yet
};

// KDS spelling: "Milan", "Genoa", "Turin", "Venice".
std::string_view product_name(Product product);

// Accepts the KDS names (any case) plus "Bergamo" and "Siena", which KDS serves as Genoa.
Result<Product> product_from_name(std::string_view name);

// From the report's CPUID_FAM_ID / CPUID_MOD_ID (v3+). Mapping per virtee/sev lib.rs
// (research/snp.md §b): models outside the known ranges yield nullopt.
std::optional<Product> product_from_cpuid(std::uint8_t family, std::uint8_t model);

// From a VCEK/VLEK productName extension: "Milan-B0", "Genoa", "Turin", "Milan" (VLEK). The
// stepping suffix is ignored because KDS gets it wrong (google/go-sev-guest#115).
Result<Product> product_from_vek_product_name(std::string_view product_name);

// Turin and later put FMC_SPL first in TCB_VERSION.
bool uses_fmc_tcb_layout(Product product);

}  // namespace cloister::attestation::snp
