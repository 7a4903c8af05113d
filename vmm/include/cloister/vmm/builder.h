// Turns a validated VmConfig into a Vmm ready to start (Firecracker's builder): choose the TEE
// backend and read the boot images first (so bad input fails before /dev/kvm is opened), then
// create the VM, its memory, devices and vCPUs, place the boot images and run the TEE launch.
#pragma once

#include <memory>

#include "cloister/vmm/config/config.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/metrics.h"
#include "cloister/vmm/vmm.h"

namespace cloister::vmm {

// `log` and `metrics` must outlive the returned Vmm.
Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, Logger& log, Metrics& metrics,
                                       const std::string& kvm_device = "/dev/kvm");

}  // namespace cloister::vmm
