// The vCPU state that reproduces an SEV-ES/SNP VMSA. On SEV-SNP, KVM builds each vCPU's VMSA
// from the state the VMM set through KVM_SET_REGS/SREGS/FPU/XCRS/MSRS/DEBUGREGS when
// SNP_LAUNCH_FINISH measures it (Linux arch/x86/kvm/svm/sev.c sev_es_sync_vmsa), adding
// EFER.SVME and CR4.MCE itself (research/snp.md §a.4). So a backend that sets exactly this state
// makes KVM measure the plan's VMSA page; the simulator sets it on a plain vCPU.
#pragma once

#include <cstdint>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/vmsa.h"
#include "cloister/vmm/arch/x86/regs.h"
#include "cloister/vmm/hypervisor/hypervisor.h"

namespace cloister::vmm::x86 {

inline constexpr std::uint64_t kEferSvme = 1ull << 12;  // APM vol. 2 §3.1.7
inline constexpr std::uint64_t kCr4Mce = 1ull << 6;     // SDM vol. 3A §2.5

struct VcpuLaunchState {
  Regs regs;
  Sregs sregs;
  Fpu fpu;
  std::uint64_t xcr0 = kXcr0X87;
  std::uint64_t pat = kPatReset;
  DebugRegs debug;
};

// VMCB segment attributes (APM vol. 2 §15.5.1: type 3:0, S 4, DPL 6:5, P 7, AVL 8, L 9, DB 10,
// G 11) as KVM's svm_set_segment() derives them, and back.
Segment segment_from_vmcb(const fw::VmcbSegment& segment);
std::uint16_t vmcb_attributes(const Segment& segment);

VcpuLaunchState vcpu_state_from_vmsa(const fw::VmsaRegisters& vmsa);

// Sets the whole state on `vcpu`: special registers first (mode), then general registers, FPU,
// XCR0, PAT and the debug registers.
Status set_launch_state(Vcpu& vcpu, const VcpuLaunchState& state);

}  // namespace cloister::vmm::x86
