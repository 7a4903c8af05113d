// The KVM implementation of the hypervisor interface: the one place that issues KVM ioctls.
#pragma once

#include <memory>
#include <string>

#include "cloister/vmm/hypervisor/hypervisor.h"

namespace cloister::vmm {

// Opens `device` (normally /dev/kvm), checks the API version and the capabilities every VM
// needs, and fails with a message naming what is missing ("KVM_CAP_IMMEDIATE_EXIT missing:
// this host cannot stop vCPUs reliably; Linux >= 4.11 is required").
Result<std::unique_ptr<Hypervisor>> open_kvm(const std::string& device = "/dev/kvm");

}  // namespace cloister::vmm
