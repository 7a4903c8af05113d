// Choosing the hypervisor a VM runs on: the config key "hypervisor" (docs/operator.md).
#pragma once

#include <memory>
#include <string>

#include "cloister/vmm/config/config.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/log.h"

namespace cloister::vmm {

// Opens KVM through `kvm_device` (kKvm), the emulator (kEmu; its emulation threads sandbox
// themselves when `seccomp`), or for kAuto KVM when the device opens and the emulator otherwise.
// Logs one `hypervisor.selected` line saying which and why; an explicit choice that cannot be
// opened is an error.
Result<std::unique_ptr<Hypervisor>> open_hypervisor(HypervisorKind kind,
                                                    const std::string& kvm_device, bool seccomp,
                                                    Logger& log);

}  // namespace cloister::vmm
