// TEE backends: the confidential-computing variations of a launch, behind one interface through
// which a reader sees the whole launch (Cloud Hypervisor style: SEV-SNP and TDX change the VM
// type and add launch steps; they do not fork the VMM). The builder asks a backend, in order:
//   1. machine_type() and needs_private_memory() while the VM and its memory are created;
//   2. init_vm() after KVM_CREATE_VM and before any vCPU exists (SNP: KVM_SEV_INIT2,
//      MAP_GPA_RANGE exits, SNP_LAUNCH_START; TDX: KVM_TDX_CAPABILITIES, KVM_TDX_INIT_VM);
//   3. launch() once every vCPU exists: execute the firmware-loader LaunchPlan operation by
//      operation (SNP_LAUNCH_UPDATE / KVM_TDX_INIT_MEM_REGION, or the simulator's writes), set
//      the vCPUs' initial state, and finalize (SNP_LAUNCH_FINISH / KVM_TDX_FINALIZE_VM);
//   4. devices() for the guest's channel to its secure processor (the simulator's doorbells);
//   5. while the guest runs, handle_exit() for the exits that carry attestation requests
//      (TDX GetQuote, SNP certificate requests);
//   6. measurement() and describe() for vm.info and the log.
// The plan is the one `cloister-measure` folds: a backend never builds a second description of
// the launch. make_tee_backend() is the only factory.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/devices/bus.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {

struct LaunchMeasurement {
  std::string algorithm;  // "sha384" for SNP MEASUREMENT and TDX MRTD
  std::string name;       // "measurement" (SNP) or "mrtd" (TDX)
  Bytes digest;
};

// What launch() works on: the VM under construction. References stay valid for the call only.
struct LaunchContext {
  Vm& vm;
  std::span<Vcpu* const> vcpus;
  const GuestMemory& memory;
  Logger& log;
  bool sandbox = true;  // threads the backend starts install their seccomp filters
};

// A device the backend places on the port-I/O bus (the simulator's doorbells).
struct TeeDevice {
  std::shared_ptr<BusDevice> device;
  std::uint64_t port = 0;
  std::uint64_t size = 0;
};

class TeeBackend {
 public:
  virtual ~TeeBackend() = default;
  virtual TeeKind kind() const = 0;
  virtual unsigned long machine_type() const = 0;  // KVM_CREATE_VM type
  virtual bool needs_private_memory() const = 0;   // RAM backed by guest_memfd
  // The plan this backend executes (null for `none`), fixed when the backend was made.
  virtual const fw::LaunchPlan* plan() const = 0;
  virtual Status init_vm(Vm& vm) = 0;
  virtual Status launch(LaunchContext& context) = 0;
  virtual std::vector<TeeDevice> devices(const GuestMemory& memory, Logger& log) = 0;
  // Serves a kTdxVmcall or kSnpCertificates exit; fails (stopping the VM) only on host errors,
  // never because of what the guest asked: bad requests are answered with the status the
  // hardware would give.
  virtual Status handle_exit(Vcpu& vcpu, const VcpuExit& exit) = 0;
  virtual std::optional<LaunchMeasurement> measurement() const = 0;
  // One sentence for operators on what measurement() holds, or why it is absent.
  virtual std::string measurement_note() const = 0;
  // The attestation-relevant launch configuration for vm.info (policy, host data, TCB, ...).
  virtual nlohmann::json describe() const = 0;
};

// The backend for `config.kind`, executing `plan` (which `none` must not have and every other
// TEE must). Checks the TEE options against the plan (SNP policy and ID block, TD attributes,
// files they name) so a bad launch fails before the hypervisor is opened.
Result<std::unique_ptr<TeeBackend>> make_tee_backend(const TeeConfig& config,
                                                     std::optional<fw::LaunchPlan> plan);

}  // namespace cloister::vmm
