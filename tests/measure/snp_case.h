// One case of ../shared/vectors/measure/snp_cases.json turned into library inputs.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::testing {

// Loads snp_cases.json / tdx_cases.json from `path`; fails the test if it cannot.
nlohmann::json load_json(const std::filesystem::path& path);

// The plan for a case, built from its fields (mode, ovmf, vcpus, vcpu_type / vcpu_sig /
// vcpu_family.., vmm_type, kernel, initrd, append, guest_features, ovmf_hash, svsm,
// vars_size), with files read from `dir`. Refused inputs come back as the library's Error.
Result<fw::LaunchPlan> snp_case_plan(const nlohmann::json& c, const std::filesystem::path& dir);

}  // namespace cloister::testing
