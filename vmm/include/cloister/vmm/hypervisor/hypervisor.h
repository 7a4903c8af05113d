// The hypervisor abstraction (Cloud Hypervisor's hypervisor crate in spirit): a Hypervisor
// creates Vms, a Vm owns memory slots, interrupt controllers and Vcpus, a Vcpu runs guest code
// until an exit the VMM must handle. The KVM implementation lives behind open_kvm(); TEE
// variants (SNP, TDX) change the VM type and add launch steps, not the shape of this interface.
// The software emulator behind open_emulator() (emu.h) implements the same interface.
//
// Contract for every method: errors are returned as values naming the operation (the ioctl for
// KVM) and the OS error; no method throws.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cloister/common/result.h"
#include "cloister/vmm/arch/x86/regs.h"

namespace cloister::vmm {

// Why Vcpu::run() returned.
enum class ExitReason {
  kIo,             // port I/O: port, size, count, is_write, data
  kMmio,           // access to a guest-physical address with no memory: address, is_write, data
  kHalt,           // HLT with no in-kernel interrupt controller to wait on
  kShutdown,       // triple fault or other shutdown condition
  kSystemEvent,    // system_event_type: KVM_SYSTEM_EVENT_* (shutdown, reset, crash, ...)
  kInternalError,  // the hypervisor could not handle the exit (e.g. emulation failure)
  kFailEntry,      // VM entry failed: hardware_reason
  kInterrupted,    // request_exit() or a signal; no guest state changed
  kOther,          // any other exit: raw_reason holds the hypervisor's code
};

std::string_view exit_reason_name(ExitReason reason);

// One exit. `data` points into the vCPU's shared run area and is valid until the next run():
// for reads (I/O IN, MMIO read) the VMM fills it and the value reaches the guest on re-entry.
struct VcpuExit {
  ExitReason reason = ExitReason::kOther;
  std::uint32_t raw_reason = 0;
  bool is_write = false;
  std::uint64_t address = 0;  // port or guest-physical address
  std::uint32_t size = 0;     // bytes per access
  std::uint32_t count = 1;    // repetitions (string I/O); data holds size * count bytes
  std::span<std::uint8_t> data;
  std::uint32_t system_event_type = 0;
  std::uint32_t suberror = 0;         // kInternalError
  std::uint64_t hardware_reason = 0;  // kFailEntry
  // kShutdown, kInternalError: the hypervisor's account of the fault when it has one (emu says
  // which exception or emulation error); empty from KVM.
  std::string detail;
};

// A guest-physical range backed by host memory.
struct MemorySlot {
  std::uint32_t slot = 0;
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  void* host_address = nullptr;
  bool read_only = false;
  // Private backing for confidential guests: a guest_memfd and the offset of this slot in it.
  std::optional<int> guest_memfd;
  std::uint64_t guest_memfd_offset = 0;
};

class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual std::uint32_t id() const = 0;

  // Runs guest code until an exit that needs the VMM. Must be called from one thread only.
  virtual Result<VcpuExit> run() = 0;

  // Makes the current or next run() return kInterrupted promptly. Safe to call from any thread;
  // the caller also signals the vCPU thread to break a run() already inside the kernel.
  virtual void request_exit() = 0;
  // Clears a request_exit(); called by the vCPU thread after it has seen kInterrupted.
  virtual void clear_exit_request() = 0;

  virtual Result<x86::Regs> regs() const = 0;
  virtual Status set_regs(const x86::Regs& regs) = 0;
  virtual Result<x86::Sregs> sregs() const = 0;
  virtual Status set_sregs(const x86::Sregs& sregs) = 0;
};

struct VmOptions {
  std::uint32_t vcpus = 1;         // checked against the host's limit
  unsigned long machine_type = 0;  // KVM_CREATE_VM type: 0 = default VM
};

class Vm {
 public:
  virtual ~Vm() = default;

  // Creates the in-kernel local APICs, IOAPIC and PIC, and with `pit` the i8254 (Linux
  // calibrates its clocks against it). Call after map_memory() and before create_vcpu(): on
  // KVM, memory slots added after the irqchip cost milliseconds each.
  virtual Status create_irqchip(bool pit) = 0;
  // Creates vCPU `id` (also its APIC ID) with the host's supported CPUID, reset state.
  virtual Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) = 0;
  virtual Status map_memory(const MemorySlot& slot) = 0;
  // Creates a guest_memfd of `size` bytes (private memory for confidential guests).
  virtual Result<int> create_guest_memfd(std::uint64_t size, std::uint64_t flags) = 0;
  // Drives interrupt line `irq` of the in-kernel PIC/IOAPIC.
  virtual Status set_irq_line(std::uint32_t irq, bool level) = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual std::string_view name() const = 0;
  virtual Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) = 0;
};

}  // namespace cloister::vmm
