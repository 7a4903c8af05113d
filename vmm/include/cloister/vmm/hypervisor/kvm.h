// The KVM implementation of the hypervisor interface: the one place that issues KVM ioctls.
#pragma once

#include <memory>
#include <string>

#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/hypervisor/kvm_sys.h"

namespace cloister::vmm {

// Opens `device` (normally /dev/kvm), checks the API version and the capabilities every VM
// needs, and fails with a message naming what is missing ("KVM_CAP_IMMEDIATE_EXIT missing:
// this host cannot stop vCPUs reliably; Linux >= 4.11 is required"). Confidential VM types are
// checked when a VM of that type is created: SEV-SNP needs KVM_CAP_VM_TYPES bit 4 and the PSP
// device /dev/sev, TDX needs bit 5 (offered only when the TDX module is loaded), each refused
// with the missing piece named before anything is created. `sys` must outlive the hypervisor.
Result<std::unique_ptr<Hypervisor>> open_kvm(const std::string& device = "/dev/kvm",
                                             KvmSys& sys = host_kvm_sys());

}  // namespace cloister::vmm
