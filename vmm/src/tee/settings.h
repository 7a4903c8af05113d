// The launch settings of the SEV-SNP and TDX backends (hardware and simulated), resolved once
// from the TEE configuration and the plan, with every conflict refused before KVM is opened.
// Private to vmm/src/tee.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/vmm/config/config.h"

namespace cloister::vmm::tee {

// SEV-SNP guest policy bits (SNP ABI 56860 §4.3 "Guest Policy").
inline constexpr std::uint64_t kSnpPolicySmt = 1ull << 16;
inline constexpr std::uint64_t kSnpPolicyReservedMbo = 1ull << 17;
inline constexpr std::uint64_t kSnpPolicyDebug = 1ull << 19;
inline constexpr std::uint64_t kSnpDefaultPolicy = kSnpPolicySmt | kSnpPolicyReservedMbo;

struct SnpSettings {
  std::uint64_t policy = kSnpDefaultPolicy;
  std::array<std::uint8_t, 32> host_data{};
  std::optional<std::array<std::uint8_t, 96>> id_block;
  std::optional<std::array<std::uint8_t, 4096>> id_auth;
  bool author_key = false;
};

// Policy: the configured one, else the IGVM file's, else 0x30000; the two must agree when both
// are given, bit 17 must be set, and an ID block's POLICY field must equal it. ID block and
// authentication: from files (exactly 96 and 4096 bytes) or the IGVM file, not both.
Result<SnpSettings> resolve_snp_settings(const TeeConfig& config, const fw::LaunchPlan& plan);
nlohmann::json describe(const SnpSettings& settings);

// TD ATTRIBUTES bits (TDX module ABI, TD_PARAMS.ATTRIBUTES).
inline constexpr std::uint64_t kTdAttributeDebug = 1ull << 0;
inline constexpr std::uint64_t kTdAttributeSeptVeDisable = 1ull << 28;

struct TdxSettings {
  std::uint64_t attributes = kTdAttributeSeptVeDisable;  // QEMU's default
  std::array<std::uint8_t, 48> mr_config_id{};
  std::array<std::uint8_t, 48> mr_owner{};
  std::array<std::uint8_t, 48> mr_owner_config{};
};

Result<TdxSettings> resolve_tdx_settings(const TeeConfig& config, const fw::LaunchPlan& plan);
nlohmann::json describe(const TdxSettings& settings);

}  // namespace cloister::vmm::tee
