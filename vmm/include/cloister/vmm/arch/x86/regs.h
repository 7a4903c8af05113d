// x86-64 register state as the VMM sees it, independent of the hypervisor's structures.
#pragma once

#include <cstdint>
#include <string>

namespace cloister::vmm::x86 {

struct Regs {
  std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
  std::uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  std::uint64_t rip = 0;
  std::uint64_t rflags = 0x2;  // bit 1 is reserved and always set
};

// A segment register including its hidden descriptor cache (Intel SDM vol. 3A §3.4.3).
struct Segment {
  std::uint64_t base = 0;
  std::uint32_t limit = 0;
  std::uint16_t selector = 0;
  std::uint8_t type = 0;
  bool present = false;
  std::uint8_t dpl = 0;
  bool db = false;  // default operation size (32-bit)
  bool s = false;   // code/data (not system)
  bool l = false;   // 64-bit code
  bool g = false;   // 4 KiB granularity
  bool unusable = false;
};

struct DescriptorTable {
  std::uint64_t base = 0;
  std::uint16_t limit = 0;
};

struct Sregs {
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  std::uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0, apic_base = 0;
};

// Control-register and EFER bits used when the VMM builds boot state (SDM vol. 3A §2.5, §2.2.1).
inline constexpr std::uint64_t kCr0Pe = 1ull << 0;
inline constexpr std::uint64_t kCr0Et = 1ull << 4;
inline constexpr std::uint64_t kCr0Pg = 1ull << 31;
inline constexpr std::uint64_t kCr4Pae = 1ull << 5;
inline constexpr std::uint64_t kEferLme = 1ull << 8;
inline constexpr std::uint64_t kEferLma = 1ull << 10;

// "rip=0x… rsp=0x… … cr0=0x… efer=0x…" for fatal-exit diagnostics.
std::string format_registers(const Regs& regs, const Sregs& sregs);

}  // namespace cloister::vmm::x86
