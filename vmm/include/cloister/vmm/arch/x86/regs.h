// x86-64 register state as the VMM sees it, independent of the hypervisor's structures.
#pragma once

#include <array>
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
  bool db = false;   // default operation size (32-bit)
  bool s = false;    // code/data (not system)
  bool l = false;    // 64-bit code
  bool g = false;    // 4 KiB granularity
  bool avl = false;  // available for system software
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

// x87/SSE state in FXSAVE terms (SDM vol. 1 §10.5.1): what KVM_GET/SET_FPU move, and what an
// SEV-ES VMSA records of it (x87_fcw, mxcsr). `ftw` is the abridged (FXSAVE) tag word.
struct Fpu {
  std::array<std::array<std::uint8_t, 16>, 8> fpr{};  // ST0-7, 80 bits each in 16 bytes
  std::uint16_t fcw = 0x37f;                          // x87 control word at reset
  std::uint16_t fsw = 0;
  std::uint8_t ftw = 0;
  std::uint16_t last_opcode = 0;
  std::uint64_t last_ip = 0;
  std::uint64_t last_dp = 0;
  std::array<std::array<std::uint8_t, 16>, 16> xmm{};
  std::uint32_t mxcsr = 0x1f80;  // MXCSR at reset

  bool operator==(const Fpu&) const = default;
};

// DR0-3, DR6, DR7 (SDM vol. 3B §18.2).
struct DebugRegs {
  std::array<std::uint64_t, 4> db{};
  std::uint64_t dr6 = 0xffff0ff0;  // reset values
  std::uint64_t dr7 = 0x400;

  bool operator==(const DebugRegs&) const = default;
};

struct Msr {
  std::uint32_t index = 0;
  std::uint64_t value = 0;

  bool operator==(const Msr&) const = default;
};

// MSRs the VMM sets beyond EFER (which travels with the special registers).
inline constexpr std::uint32_t kMsrIa32Pat = 0x277;  // SDM vol. 3A §11.12.2
inline constexpr std::uint64_t kPatReset = 0x0007040600070406ull;

// The MSRs a snapshot saves besides EFER and APIC_BASE (which travel with the special
// registers): SYSENTER (SDM vol. 3A §5.8.7), PAT, and the SYSCALL and SWAPGS MSRs
// (SDM vol. 3A §5.8.8).
inline constexpr std::uint32_t kSnapshotMsrs[] = {
    0x174, 0x175, 0x176, kMsrIa32Pat, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102};

// XCR0 bit 0 (x87) is architecturally always set (SDM vol. 1 §13.3).
inline constexpr std::uint64_t kXcr0X87 = 1;

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
