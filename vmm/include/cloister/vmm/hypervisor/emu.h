// The software-emulation implementation of the hypervisor interface ("emu"): every vCPU runs
// on a Unicorn 2 engine (QEMU's TCG as a library) instead of KVM, so the VMM and its test guest
// run on hosts without /dev/kvm, the way QEMU's `-accel tcg` does. Speed class: an interpreter
// with a translation cache, tens to hundreds of times slower than KVM on guest code; exits cost
// two thread hand-offs.
//
// What the VMM sees is the KVM contract of hypervisor.h, with these differences:
//   - Execution is serialised per VM (QEMU's single-threaded TCG model): Unicorn has no
//     parallel-CPU atomics, so only one vCPU executes guest code at a time; the others wait and
//     take turns in slices of translated blocks. Locked read-modify-writes are atomic because of
//     this. Halted vCPUs and vCPUs waiting for the VMM do not hold the VM.
//   - Port I/O and MMIO exits carry one element each: a `rep outsb` of 16 bytes is 16 exits of
//     one byte (KVM may batch them), and an 8-byte MMIO access arrives as two 4-byte exits
//     (Unicorn's MMIO dispatch splits it). A write to read-only memory (firmware) is an MMIO
//     write exit and leaves the memory unchanged, as with KVM_MEM_READONLY.
//   - Interrupts and exceptions are not delivered to the guest. set_irq_line() records the line
//     level and nothing more, the local APIC (create_irqchip) only starts other vCPUs with INIT
//     and STARTUP IPIs, and a guest exception ends the run: with an IDT too short to hold it,
//     #GP and #DF the processor would shut down, and run() reports kShutdown; any other
//     exception is kInternalError (suberror KVM_INTERNAL_ERROR_DELIVERY_EV). Invalid
//     instructions and fetches from outside RAM and firmware are kInternalError
//     (KVM_INTERNAL_ERROR_EMULATION). VcpuExit::detail says which.
//   - HLT: with the irqchip a vCPU halts until INIT or request_exit() (kInterrupted, still
//     halted), whatever RFLAGS.IF says, since nothing else can wake it; without the irqchip
//     run() returns kHalt, as KVM does.
//   - Unicorn 2.0.1 walks the guest's page tables for faults and permissions, then accesses the
//     physical address equal to the linear one: guests must identity-map the memory they use,
//     as the test guest and the VMM's kernel boot state do. Higher-half kernels such as Linux do
//     not run.
//   - Each vCPU's engine keeps its own translation cache: code written by one vCPU or a device
//     over code another vCPU has already run is not retranslated by that vCPU.
//   - No private memory: create_guest_memfd() fails. Confidential guests on emu run through the
//     simulated secure processor (tee sim-snp/sim-tdx), which uses plain memory.
//   - Each vCPU reserves 1 GiB of address space for translated code (touched as it fills).
//   - Snapshot state (VcpuState): no XSAVE area (the engine has no XSAVE), the local APIC as a
//     1 KiB register image laid out like KVM's, and no "uninitialized" MP state (an AP waits for
//     STARTUP from the start). The VM has no platform state (VmPlatformState is empty). A run()
//     after request_exit() completes a pending I/O or MMIO access and stops on the next block
//     boundary, as KVM completes it on a KVM_RUN with immediate_exit.
//
// Register state has KVM's fidelity: set_sregs() accepts hidden segment bases, limits and
// attributes (the reset state's CS base 0xffff0000, a SIPI's CS base vector << 12) and loads
// them exactly, by running a loader program in the engine on the next run(); states it cannot
// reach are refused when set (CPL 3, virtual-8086 mode, a segment the loader cannot load at its
// selector: see check_loadable in src/hypervisor/emu/loader.h). sregs() returns the hidden
// segment fields last loaded while the selector is unchanged; after the guest reloads a segment
// register it reports what that load produced (the guest's descriptor in protected mode, base =
// selector * 16 in real mode), because Unicorn cannot read its descriptor caches.
//
// CPUID: the engine's own answers, except leaf 1 (EAX = the vCPU signature below, EBX[31:24] =
// APIC ID, ECX.hypervisor, and EDX completed with the features the engine implements but its
// reset CPUID omits: FPU, PSE, TSC, MSR, PAE, PGE, and APIC with the irqchip) and leaf 0BH (one
// thread per core, every vCPU a core of one package, EDX = x2APIC ID). Leaf 1FH is beyond the
// engine's highest basic leaf, so it reports that leaf's data as a processor would.
#pragma once

#include <cstdint>
#include <memory>

#include "cloister/vmm/hypervisor/hypervisor.h"

namespace cloister::vmm {

// The CPUID.01H:EAX signature of Unicorn 2.0.1's x86-64 model ("qemu64": family 6, model 6,
// stepping 3); emu vCPUs report it unless EmuOptions says otherwise.
inline constexpr std::uint32_t kEmuDefaultCpuSignature = 0x00000663;

struct EmuOptions {
  // CPUID.01H:EAX of every vCPU, also in RDX after reset and INIT (SDM vol. 3A §9.1.4), the way
  // an SEV-SNP launch puts the signature it measured into the VMSA's RDX.
  std::uint32_t cpu_signature = kEmuDefaultCpuSignature;
  // Each vCPU's emulation thread installs the ThreadClass::kEmu seccomp filter as it starts
  // (in builds where seccomp_available()), before create_vcpu() returns, which fails when the
  // filter cannot be installed. The engine's translation buffer is mapped before that, when
  // create_vcpu() opens and probes the engine on the calling thread.
  bool seccomp = false;
};

// Loads the Unicorn library (libunicorn.so.2, on first use only, so that KVM runs never load it),
// checks it is version 2 with x86, and returns the "emu" hypervisor. VMs accept
// machine_type 0 only. A Vm must be given its memory slots and irqchip before its vCPUs (each
// vCPU's engine maps the guest memory when it is created); vCPUs may outlive their Vm object.
Result<std::unique_ptr<Hypervisor>> open_emulator(const EmuOptions& options = {});

}  // namespace cloister::vmm
