// The KVM tests' vCPU: it starts in real mode at `rip` with CS base and selector 0, where the
// tests put their code.
#pragma once

#include <memory>

#include "cloister/vmm/hypervisor/hypervisor.h"

namespace cloister::vmm {

inline Result<std::unique_ptr<Vcpu>> real_mode_vcpu(Vm& vm, std::uint64_t rip) {
  CLOISTER_TRY(auto vcpu, vm.create_vcpu(0));
  CLOISTER_TRY(auto sregs, vcpu->sregs());
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  CLOISTER_CHECK_OK(vcpu->set_sregs(sregs));
  x86::Regs regs;
  regs.rip = rip;
  CLOISTER_CHECK_OK(vcpu->set_regs(regs));
  return vcpu;
}

}  // namespace cloister::vmm
