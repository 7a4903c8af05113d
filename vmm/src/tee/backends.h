// The TEE backends' factories. Private to vmm/src/tee: make_tee_backend() (tee.h) chooses.
#pragma once

#include <memory>

#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/tee/tee.h"
#include "settings.h"

namespace cloister::vmm::tee {

Result<std::unique_ptr<TeeBackend>> make_snp_backend(const TeeConfig& config, fw::LaunchPlan plan);
Result<std::unique_ptr<TeeBackend>> make_tdx_backend(const TeeConfig& config, fw::LaunchPlan plan);
// The simulated secure processor: its state directory is opened (and on first use created)
// here, before the hypervisor.
Result<std::unique_ptr<TeeBackend>> make_sim_snp_backend(const TeeConfig& config,
                                                         fw::LaunchPlan plan);
Result<std::unique_ptr<TeeBackend>> make_sim_tdx_backend(const TeeConfig& config,
                                                         fw::LaunchPlan plan);

}  // namespace cloister::vmm::tee
