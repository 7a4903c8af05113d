// Turns a validated VmConfig into a Vmm ready to start (Firecracker's builder), in two steps.
// load_vm_inputs() reads and checks every input file — the TEE backend and its launch plan, the
// boot images — so that what fails there is an input to fix (cloister-vmm exits 2). build_vmm()
// then creates the devices, opens the hypervisor, the VM, its memory (guest_memfd-backed
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
#include "cloister/vmm/snapshot/snapshot.h"
#include "cloister/vmm/tee/tee.h"
#include "cloister/vmm/vmm.h"

namespace cloister::vmm {

// Opens the hypervisor when the builder gets to it; tests pass one over a recording ioctl layer.
using HypervisorFactory = std::function<Result<std::unique_ptr<Hypervisor>>()>;

// The hypervisor `config` names (its "hypervisor" key: auto, kvm through `kvm_device`, emu),
// logging the choice to `log`, which must outlive the factory.
HypervisorFactory configured_hypervisor(const VmConfig& config, Logger& log,
                                        std::string kvm_device = "/dev/kvm");

// What a VM is built from besides its config, read and checked before anything else happens.
struct VmInputs {
  // The TEE backend; for a confidential launch it holds the LaunchPlan of boot.firmware or
  // boot.igvm.
  std::unique_ptr<TeeBackend> tee;
  BootImages images;  // a plain VM's firmware or kernel (and initrd); unused for confidential ones
};

// Reads and parses the files `config` names (boot images, IGVM file, TEE settings files: each
// within its format's limit) and sets up the TEE backend, without touching the hypervisor. Every
// failure names the file or key and means an input or the configuration must change.
Result<VmInputs> load_vm_inputs(const VmConfig& config);

// Builds the VM `config` describes from `inputs` (load_vm_inputs(config)). Its failures are
// host or VMM errors: devices, the hypervisor, guest memory. `log` and `metrics` must outlive the
// returned Vmm.
Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, VmInputs inputs, Logger& log,
                                       Metrics& metrics, const HypervisorFactory& open_hypervisor);

// Builds a VM from a snapshot that open_snapshot() has checked, ready to start() where the
// snapshot was taken: guest memory mapped privately from the memory file (nothing is copied),
// the VM's interrupt controllers and clock, the UART, every virtio device (its transport and
// queues as saved; disks re-opened by path, TAPs and the vsock socket attached again) and every
// vCPU restored. `config` is the snapshot's with the run-time settings of the restoring process
// (API socket, console, logs, seccomp, the snapshot's hypervisor). Refuses, with
// ErrorCode::kFailedPrecondition and before the hypervisor is opened, a confidential guest, a
// virtio device count or vCPU count other than the snapshot's, and a disk that is missing or
// whose size changed; and, once it is open, a hypervisor other than the one that wrote the
// snapshot. Other failures are host or VMM errors. Nothing runs until the caller start()s it.
Result<std::unique_ptr<Vmm>> restore_vmm(const VmConfig& config, OpenedSnapshot snapshot,
                                         Logger& log, Metrics& metrics,
                                         const HypervisorFactory& open_hypervisor);

}  // namespace cloister::vmm
