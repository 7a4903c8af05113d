// TEE backends: the confidential-computing variations of a launch, behind one interface (Cloud
// Hypervisor style: SEV-SNP and TDX change the VM type and add launch steps; they do not fork
// the VMM). A backend is asked, in order:
//   1. machine_type() / needs_private_memory() while the VM is created;
//   2. init_vm() after KVM_CREATE_VM and before any vCPU (SNP: KVM_SEV_INIT2 then
//      SNP_LAUNCH_START; TDX: KVM_TDX_INIT_VM);
//   3. launch() once every vCPU exists and the boot images are in guest memory: execute the
//      firmware-loader LaunchPlan (SNP_LAUNCH_UPDATE / TDX_INIT_MEM_REGION page by page) and
//      finalize (SNP_LAUNCH_FINISH / TDX_FINALIZE_VM);
//   4. measurement() for vm.info and the API.
// Only `none` is implemented today; see make_tee_backend().
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {

struct LaunchMeasurement {
  std::string algorithm;  // "sha384" for SNP MEASUREMENT and TDX MRTD
  Bytes digest;
};

class TeeBackend {
 public:
  virtual ~TeeBackend() = default;
  virtual TeeKind kind() const = 0;
  virtual unsigned long machine_type() const = 0;  // KVM_CREATE_VM type
  virtual bool needs_private_memory() const = 0;   // RAM backed by guest_memfd
  virtual Status init_vm(Vm& vm) = 0;
  virtual Status launch(Vm& vm, std::span<Vcpu* const> vcpus, const GuestMemory& memory) = 0;
  virtual std::optional<LaunchMeasurement> measurement() const = 0;
  // One sentence for operators on what measurement() holds, or why it is absent.
  virtual std::string measurement_note() const = 0;
};

// The backend for `kind`. `none` always succeeds. sim-snp, sim-tdx, snp and tdx fail with an
// error saying the backend is not implemented yet: the configuration accepts them so configs
// can be written ahead, but nothing is launched and KVM is never opened.
Result<std::unique_ptr<TeeBackend>> make_tee_backend(TeeKind kind);

}  // namespace cloister::vmm
