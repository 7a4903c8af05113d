#include "cloister/vmm/arch/x86/vmsa_state.h"

namespace cloister::vmm::x86 {

Segment segment_from_vmcb(const fw::VmcbSegment& in) {
  Segment out;
  out.base = in.base;
  out.limit = in.limit;
  out.selector = in.selector;
  out.type = static_cast<std::uint8_t>(in.attrib & 0xf);
  out.s = (in.attrib >> 4) & 1;
  out.dpl = static_cast<std::uint8_t>((in.attrib >> 5) & 3);
  out.present = (in.attrib >> 7) & 1;
  out.avl = (in.attrib >> 8) & 1;
  out.l = (in.attrib >> 9) & 1;
  out.db = (in.attrib >> 10) & 1;
  out.g = (in.attrib >> 11) & 1;
  // KVM clears P for an unusable segment and reports a segment without P as unusable.
  out.unusable = !out.present;
  return out;
}

std::uint16_t vmcb_attributes(const Segment& s) {
  return static_cast<std::uint16_t>((s.type & 0xf) | (s.s ? 1u << 4 : 0) | ((s.dpl & 3u) << 5) |
                                    (s.present && !s.unusable ? 1u << 7 : 0) |
                                    (s.avl ? 1u << 8 : 0) | (s.l ? 1u << 9 : 0) |
                                    (s.db ? 1u << 10 : 0) | (s.g ? 1u << 11 : 0));
}

VcpuLaunchState vcpu_state_from_vmsa(const fw::VmsaRegisters& v) {
  VcpuLaunchState state;
  Regs& r = state.regs;
  r.rax = v.rax, r.rbx = v.rbx, r.rcx = v.rcx, r.rdx = v.rdx;
  r.rsi = v.rsi, r.rdi = v.rdi, r.rsp = v.rsp, r.rbp = v.rbp;
  r.r8 = v.r8_r15[0], r.r9 = v.r8_r15[1], r.r10 = v.r8_r15[2], r.r11 = v.r8_r15[3];
  r.r12 = v.r8_r15[4], r.r13 = v.r8_r15[5], r.r14 = v.r8_r15[6], r.r15 = v.r8_r15[7];
  r.rip = v.rip;
  r.rflags = v.rflags;

  Sregs& s = state.sregs;
  s.cs = segment_from_vmcb(v.cs), s.ds = segment_from_vmcb(v.ds), s.es = segment_from_vmcb(v.es);
  s.fs = segment_from_vmcb(v.fs), s.gs = segment_from_vmcb(v.gs), s.ss = segment_from_vmcb(v.ss);
  s.tr = segment_from_vmcb(v.tr), s.ldt = segment_from_vmcb(v.ldtr);
  s.gdt = {v.gdtr.base, static_cast<std::uint16_t>(v.gdtr.limit)};
  s.idt = {v.idtr.base, static_cast<std::uint16_t>(v.idtr.limit)};
  s.cr0 = v.cr0;
  s.cr3 = v.cr3;
  s.cr4 = v.cr4 & ~kCr4Mce;      // KVM adds it
  s.efer = v.efer & ~kEferSvme;  // KVM adds it

  state.fpu.fcw = v.x87_fcw;
  state.fpu.mxcsr = v.mxcsr;
  state.xcr0 = v.xcr0;
  state.pat = v.g_pat;
  state.debug.dr6 = v.dr6;
  state.debug.dr7 = v.dr7;
  return state;
}

Status set_launch_state(Vcpu& vcpu, const VcpuLaunchState& state) {
  const std::string what = "vCPU " + std::to_string(vcpu.id()) + " launch state";
  // The VMSA does not hold the APIC base, CR2 or CR8: they keep their reset values.
  auto current = vcpu.sregs();
  if (!current) return current.error().with_context(what);
  Sregs sregs = state.sregs;
  sregs.apic_base = current->apic_base;
  sregs.cr2 = current->cr2;
  sregs.cr8 = current->cr8;
  if (auto st = vcpu.set_sregs(sregs); !st) return st.error().with_context(what);
  if (auto st = vcpu.set_regs(state.regs); !st) return st.error().with_context(what);
  if (auto st = vcpu.set_fpu(state.fpu); !st) return st.error().with_context(what);
  if (auto st = vcpu.set_xcr0(state.xcr0); !st) return st.error().with_context(what);
  const Msr pat{kMsrIa32Pat, state.pat};
  if (auto st = vcpu.set_msrs(std::span(&pat, 1)); !st) return st.error().with_context(what);
  if (auto st = vcpu.set_debug_regs(state.debug); !st) return st.error().with_context(what);
  return {};
}

}  // namespace cloister::vmm::x86
