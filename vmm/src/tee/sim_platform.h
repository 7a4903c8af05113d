// The simulated secure processor's platform description in a VM config ("tee": {"sim_platform":
// {...}}, or --sim-platform FILE), and where its state lives. Private to vmm/src/tee.
//
//   SEV-SNP: {"product": "Milan" | "Genoa" | "Turin", "chip_id": HEX, "tcb": TCB,
//             "reported_tcb": TCB, "committed_tcb": TCB, "launch_tcb": TCB,
//             "platform_info": "0x25", "firmware": "1.55.43"}
//            TCB = {"bl": N, "tee": N, "snp": N, "ucode": N, "fmc": N (Turin)}; "tcb" sets all
//            four TCBs, the others override one each.
//   TDX:     {"tee_tcb_svn": HEX16, "fmspc": HEX6, "pce_svn": N, "cpu_svn": HEX16,
//             "qe_svn": N, "mr_seam": HEX48, "vulnerable": true | false}
// Every key is optional (the defaults describe a current, healthy platform: attestation/sim/
// config.h); unknown keys and values the hardware cannot produce are refused, naming the key.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cloister/attestation/sim/config.h"
#include "cloister/common/result.h"
#include "cloister/vmm/config/config.h"

namespace cloister::vmm::tee {

Result<attestation::sim::SnpPlatformConfig> snp_platform(const nlohmann::json& description);
Result<attestation::sim::TdxPlatformConfig> tdx_platform(const nlohmann::json& description);

// tee.sim_state_dir, else $CLOISTER_SIM_STATE, else $XDG_STATE_HOME/cloister/sim, else
// $HOME/.local/state/cloister/sim.
Result<std::filesystem::path> sim_state_dir(const TeeConfig& config);

}  // namespace cloister::vmm::tee
