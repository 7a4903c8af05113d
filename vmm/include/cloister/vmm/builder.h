// Turns a validated VmConfig into a Vmm ready to start (Firecracker's builder). Everything that
// can be checked without a hypervisor comes first — the TEE backend and its launch plan, the
// boot images, devices — then the hypervisor is opened, the VM, its memory (guest_memfd-backed
// for confidential guests), devices and vCPUs are created, and the images are placed: by the
// boot loader for plain VMs, by the TEE backend executing the LaunchPlan for confidential ones.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cloister/vmm/config/config.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/metrics.h"
#include "cloister/vmm/vmm.h"

namespace cloister::vmm {

// Opens the hypervisor when the builder gets to it; tests pass one over a recording ioctl layer.
using HypervisorFactory = std::function<Result<std::unique_ptr<Hypervisor>>()>;

// The hypervisor `config` names (its "hypervisor" key: auto, kvm through `kvm_device`, emu),
// logging the choice to `log`, which must outlive the factory.
HypervisorFactory configured_hypervisor(const VmConfig& config, Logger& log,
                                        std::string kvm_device = "/dev/kvm");

// `log` and `metrics` must outlive the returned Vmm.
Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, Logger& log, Metrics& metrics,
                                       const HypervisorFactory& open_hypervisor);

}  // namespace cloister::vmm
