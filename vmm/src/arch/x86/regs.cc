#include "cloister/vmm/arch/x86/regs.h"

#include "cloister/vmm/format.h"

namespace cloister::vmm::x86 {

std::string format_registers(const Regs& r, const Sregs& s) {
  std::string out;
  auto add = [&](const char* name, std::uint64_t v) {
    if (!out.empty()) out += ' ';
    out += name;
    out += '=';
    out += hex(v);
  };
  add("rip", r.rip), add("rsp", r.rsp), add("rflags", r.rflags);
  add("rax", r.rax), add("rbx", r.rbx), add("rcx", r.rcx), add("rdx", r.rdx);
  add("rsi", r.rsi), add("rdi", r.rdi), add("rbp", r.rbp);
  add("r8", r.r8), add("r9", r.r9), add("r10", r.r10), add("r11", r.r11);
  add("r12", r.r12), add("r13", r.r13), add("r14", r.r14), add("r15", r.r15);
  add("cs", s.cs.selector), add("cs.base", s.cs.base), add("ss", s.ss.selector);
  add("cr0", s.cr0), add("cr2", s.cr2), add("cr3", s.cr3), add("cr4", s.cr4);
  add("efer", s.efer), add("gdt.base", s.gdt.base), add("idt.base", s.idt.base);
  add("idt.limit", s.idt.limit);
  return out;
}

}  // namespace cloister::vmm::x86
