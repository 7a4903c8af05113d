#include "hypervisor/emu/loader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "cloister/vmm/format.h"

// The loader program's parameter block, one page after its code (offsets shared by the program
// below and the C++ that fills the block, hence macros).
#define EMU_P_LOADER_GDTR 0x00    // m16&64: limit, base of the loader's GDT
#define EMU_P_LOADER_CR3 0x10     // u32: the loader's PML4
#define EMU_P_LOADER_CODE32 0x14  // u16: selector of the loader's flat 32-bit code segment
#define EMU_P_LOADER_DATA32 0x16  // u16: selector of the loader's flat data segment
#define EMU_P_CR0 0x18            // u64: target CR0
#define EMU_P_CR3 0x20            // u64: target CR3
#define EMU_P_CR4 0x28            // u64: target CR4
#define EMU_P_EFER 0x30           // u64: target EFER
#define EMU_P_CS 0x38             // u16: target CS selector
#define EMU_P_EIP 0x3c            // u32: where the far return lands in the target's CS
#define EMU_P_DS 0x40             // u16 x5 (DS, ES, FS, GS, SS): selectors loaded in protected mode
#define EMU_P_PARAMS_FROM_CS 0x4c  // u32: parameter block address minus the target CS base
#define EMU_P_REAL_DS 0x50         // u16 x5: selectors a real-mode target reloads in real mode
#define EMU_P_RELOAD_DS 0x5a       // u8 x5: non-zero where that reload happens
#define EMU_STACK_FROM_PARAMS 0x5000

#define EMU_STR2(x) #x
#define EMU_STR(x) EMU_STR2(x)
#define EMU_SEG(base, i) EMU_STR(base + 2 * i)
#define EMU_FLAG(i) EMU_STR(EMU_P_RELOAD_DS + i)

// The program, assembled with the rest of this file and copied into the window at each load. It
// addresses its parameter block relative to RIP, then through ESI; nothing in it depends on
// where the copy sits but the distance from code to parameters.
asm(".pushsection .rodata.cloister_emu_loader, \"a\"\n"
    ".balign 16\n"
    ".globl cloister_emu_loader_code\n"
    ".hidden cloister_emu_loader_code\n"
    "cloister_emu_loader_code:\n"
    ".code64\n"
    // Long-mode targets. The engine is in its reset state: 64-bit mode, paging off.
    ".Lemu_long:\n"
    "  lea cloister_emu_loader_code+0x1000(%rip), %rsi\n"
    "  lgdt " EMU_STR(EMU_P_LOADER_GDTR) "(%rsi)\n"
    "  mov " EMU_STR(EMU_P_CR4) "(%rsi), %rax\n"
    "  mov %rax, %cr4\n"
    "  mov $0xc0000080, %ecx\n"  // IA32_EFER
    "  mov " EMU_STR(EMU_P_EFER) "(%rsi), %eax\n"
    "  mov " EMU_STR(EMU_P_EFER) "+4(%rsi), %edx\n"
    "  wrmsr\n"
    "  mov " EMU_STR(EMU_P_CR3) "(%rsi), %rax\n"
    "  mov %rax, %cr3\n"
    "  mov " EMU_SEG(EMU_P_DS, 0) "(%rsi), %ds\n"
    "  mov " EMU_SEG(EMU_P_DS, 1) "(%rsi), %es\n"
    "  mov " EMU_SEG(EMU_P_DS, 2) "(%rsi), %fs\n"
    "  mov " EMU_SEG(EMU_P_DS, 3) "(%rsi), %gs\n"
    "  mov " EMU_SEG(EMU_P_DS, 4) "(%rsi), %ss\n"
    "  lea " EMU_STR(EMU_STACK_FROM_PARAMS) "(%rsi), %rsp\n"
    "  movzwl " EMU_STR(EMU_P_CS) "(%rsi), %eax\n"
    "  push %rax\n"
    "  mov " EMU_STR(EMU_P_EIP) "(%rsi), %eax\n"
    "  push %rax\n"
    "  mov " EMU_STR(EMU_P_CR0) "(%rsi), %rax\n"
    "  lretq\n"
    // Every other target: paging on over the loader's tables keeps long mode (EFER.LME is set),
    // so that turning it off in 32-bit code can leave long mode.
    ".Lemu_legacy:\n"
    "  lea cloister_emu_loader_code+0x1000(%rip), %rsi\n"
    "  lgdt " EMU_STR(EMU_P_LOADER_GDTR) "(%rsi)\n"
    "  mov $0x20, %eax\n"  // CR4.PAE
    "  mov %rax, %cr4\n"
    "  mov " EMU_STR(EMU_P_LOADER_CR3) "(%rsi), %eax\n"
    "  mov %rax, %cr3\n"
    "  mov $0x80000011, %eax\n"  // CR0.PG | ET | PE
    "  mov %rax, %cr0\n"
    "  lea " EMU_STR(EMU_STACK_FROM_PARAMS) "(%rsi), %rsp\n"
    "  movzwl " EMU_STR(EMU_P_LOADER_CODE32) "(%rsi), %eax\n"
    "  push %rax\n"
    "  lea .Lemu_compat(%rip), %rax\n"
    "  push %rax\n"
    "  lretq\n"
    ".code32\n"
    ".Lemu_compat:\n"
    "  mov $0x11, %eax\n"  // CR0.ET | PE: paging off, so EFER.LMA clears
    "  mov %eax, %cr0\n"
    "  mov $0xc0000080, %ecx\n"
    "  mov " EMU_STR(EMU_P_EFER) "(%esi), %eax\n"
    "  mov " EMU_STR(EMU_P_EFER) "+4(%esi), %edx\n"
    "  wrmsr\n"
    "  mov " EMU_STR(EMU_P_CR4) "(%esi), %eax\n"
    "  mov %eax, %cr4\n"
    "  mov " EMU_STR(EMU_P_CR3) "(%esi), %eax\n"
    "  mov %eax, %cr3\n"
    // The reset state's data segments have base 0, so ESI addresses the block until here.
    "  mov " EMU_STR(EMU_P_LOADER_DATA32) "(%esi), %ss\n"
    "  lea " EMU_STR(EMU_STACK_FROM_PARAMS) "(%esi), %esp\n"
    "  movzwl " EMU_STR(EMU_P_CS) "(%esi), %eax\n"
    "  push %eax\n"
    "  pushl " EMU_STR(EMU_P_EIP) "(%esi)\n"
    "  mov " EMU_STR(EMU_P_CR0) "(%esi), %eax\n"
    "  mov " EMU_STR(EMU_P_PARAMS_FROM_CS) "(%esi), %edi\n"
    "  mov %ss:" EMU_SEG(EMU_P_DS, 0) "(%esi), %ds\n"
    "  mov %ss:" EMU_SEG(EMU_P_DS, 1) "(%esi), %es\n"
    "  mov %ss:" EMU_SEG(EMU_P_DS, 2) "(%esi), %fs\n"
    "  mov %ss:" EMU_SEG(EMU_P_DS, 3) "(%esi), %gs\n"
    "  lret\n"
    // The tails run in the target's code segment, the loader's SS still in place. 32-bit CS:
    ".Lemu_tail32:\n"
    "  mov %ss:" EMU_SEG(EMU_P_DS, 4) "(%esi), %ss\n"
    "  mov %eax, %cr0\n"
    ".Lemu_tail32_end:\n"
    // 16-bit CS. A real-mode target is in real mode after the CR0 write; its reloads address the
    // block through CS (EDI = block - CS base; 32-bit offsets wrap like the linear address), and
    // their branches carry an operand-size prefix so EIP is not cut to 16 bits. Both prefixes are
    // spelt for LLVM's assembler (clang 14), which rejects `addr32` outside 64-bit mode and drops
    // `data32` from a branch: a 32-bit base register emits the address-size prefix, and the
    // operand-size prefix is a byte of its own.
    ".code16\n"
    ".Lemu_tail16:\n"
    "  mov %ss:" EMU_SEG(EMU_P_DS, 4) "(%esi), %ss\n"
    "  mov %eax, %cr0\n"
    ".Lemu_tail16_protected_end:\n"
    "  cmpb $0, %cs:" EMU_FLAG(0) "(%edi)\n"
    "  .byte 0x66\n"
    "  je 1f\n"
    "  mov %cs:" EMU_SEG(EMU_P_REAL_DS, 0) "(%edi), %ds\n"
    "1:cmpb $0, %cs:" EMU_FLAG(1) "(%edi)\n"
    "  .byte 0x66\n"
    "  je 1f\n"
    "  mov %cs:" EMU_SEG(EMU_P_REAL_DS, 1) "(%edi), %es\n"
    "1:cmpb $0, %cs:" EMU_FLAG(2) "(%edi)\n"
    "  .byte 0x66\n"
    "  je 1f\n"
    "  mov %cs:" EMU_SEG(EMU_P_REAL_DS, 2) "(%edi), %fs\n"
    "1:cmpb $0, %cs:" EMU_FLAG(3) "(%edi)\n"
    "  .byte 0x66\n"
    "  je 1f\n"
    "  mov %cs:" EMU_SEG(EMU_P_REAL_DS, 3) "(%edi), %gs\n"
    "1:cmpb $0, %cs:" EMU_FLAG(4) "(%edi)\n"
    "  .byte 0x66\n"
    "  je 1f\n"
    "  mov %cs:" EMU_SEG(EMU_P_REAL_DS, 4) "(%edi), %ss\n"
    "1:\n"
    ".Lemu_tail16_end:\n"
    // 64-bit or compatibility-mode CS of a long-mode target.
    ".code64\n"
    ".Lemu_tail64:\n"
    "  mov %rax, %cr0\n"
    ".Lemu_tail64_end:\n"
    ".Lemu_code_end:\n"
    ".balign 4\n"
    ".globl cloister_emu_loader_layout\n"
    ".hidden cloister_emu_loader_layout\n"
    "cloister_emu_loader_layout:\n"
    "  .long .Lemu_code_end - cloister_emu_loader_code\n"
    "  .long .Lemu_long - cloister_emu_loader_code\n"
    "  .long .Lemu_legacy - cloister_emu_loader_code\n"
    "  .long .Lemu_tail32 - cloister_emu_loader_code\n"
    "  .long .Lemu_tail32_end - cloister_emu_loader_code\n"
    "  .long .Lemu_tail16 - cloister_emu_loader_code\n"
    "  .long .Lemu_tail16_protected_end - cloister_emu_loader_code\n"
    "  .long .Lemu_tail16_end - cloister_emu_loader_code\n"
    "  .long .Lemu_tail64 - cloister_emu_loader_code\n"
    "  .long .Lemu_tail64_end - cloister_emu_loader_code\n"
    ".popsection\n");

namespace {

struct LoaderLayout {
  std::uint32_t size, long_entry, legacy_entry;
  std::uint32_t tail32, tail32_end, tail16, tail16_protected_end, tail16_end, tail64, tail64_end;
};

}  // namespace

extern "C" {
extern const std::uint8_t cloister_emu_loader_code[];
extern const LoaderLayout cloister_emu_loader_layout;
}

namespace cloister::vmm::emu {
namespace {

// Offsets in the window.
constexpr std::uint64_t kGdtOffset = 0x0;  // 8192 descriptors: every selector has its slot
constexpr std::uint64_t kGdtSize = 0x10000;
constexpr std::uint64_t kCodeOffset = 0x10000;
constexpr std::uint64_t kParamsOffset = 0x11000;
constexpr std::uint64_t kPml4Offset = 0x12000;
constexpr std::uint64_t kPdptOffset = 0x13000;
constexpr std::uint64_t kPdOffset = 0x14000;
static_assert(kParamsOffset == kCodeOffset + 0x1000, "the program finds its block at code + 4 KiB");
static_assert(kParamsOffset + EMU_STACK_FROM_PARAMS <= kLoaderWindow.size);
static_assert(kLoaderAlias.begin == kLoaderWindow.begin + kCodeOffset + (1ull << 32));

constexpr std::uint64_t kWindow = kLoaderWindow.begin;
constexpr std::uint64_t kLoaderCode32 = 0x00cf9b000000ffff;  // flat 32-bit code, accessed
constexpr std::uint64_t kLoaderData32 = 0x00cf93000000ffff;  // flat data, accessed

// x86::Sregs data segments in the order of the parameter block's arrays.
constexpr const char* kDataNames[] = {"ds", "es", "fs", "gs", "ss"};
std::array<const x86::Segment*, 5> data_segments(const x86::Sregs& s) {
  return {&s.ds, &s.es, &s.fs, &s.gs, &s.ss};
}

constexpr std::uint8_t kTypeCode = 0x8;
constexpr std::uint8_t kTypeAccessed = 0x1;
constexpr std::uint8_t kTypeWritable = 0x2;  // data segments; for code: readable
constexpr std::uint8_t kTypeConforming = 0x4;

Error unloadable(std::string_view field, std::string_view expected, std::uint64_t found) {
  return Error("emu: set_sregs: " + std::string(field) + ": the emulator's loader needs " +
               std::string(expected) + ", found " + hex(found));
}

// The descriptor (SDM vol. 3A §3.4.5) whose load gives `s`: base, limit, attributes.
Result<std::uint64_t> descriptor(const x86::Segment& s, std::string_view name) {
  if (s.base > 0xffffffff) return unloadable(std::string(name) + ".base", "a 32-bit base", s.base);
  if (s.g ? (s.limit & 0xfff) != 0xfff : s.limit > 0xfffff)
    return unloadable(std::string(name) + ".limit",
                      s.g ? "the low 12 bits set (g = 1)" : "at most 0xfffff (g = 0)", s.limit);
  const std::uint64_t limit = s.g ? s.limit >> 12 : s.limit;
  const std::uint64_t high = ((s.base >> 16) & 0xff) | (std::uint64_t{s.type} << 8) |
                             (std::uint64_t{s.s} << 12) | (std::uint64_t{s.dpl} << 13) |
                             (std::uint64_t{s.present} << 15) | (limit & 0xf0000) |
                             (std::uint64_t{s.l} << 21) | (std::uint64_t{s.db} << 22) |
                             (std::uint64_t{s.g} << 23) | (s.base & 0xff000000);
  return (high << 32) | ((s.base & 0xffff) << 16) | (limit & 0xffff);
}

// What the loader does with one segment register.
struct SegmentPlan {
  std::uint16_t selector = 0;               // loaded in protected (or long) mode
  std::optional<std::uint64_t> descriptor;  // at the selector's GDT slot, when not null
  bool fixed_slot = false;                  // the target's own selector (else a spare slot)
  bool real_mode_reload = false;            // then reloaded in real mode with the target's
};

bool null_selector(std::uint16_t selector) {
  return (selector & ~3u) == 0;
}

// How each data segment gets loaded, or why it cannot be.
Result<std::array<SegmentPlan, 5>> plan_data_segments(const x86::Sregs& s) {
  const bool real = !(s.cr0 & x86::kCr0Pe);
  const bool long_code = (s.efer & x86::kEferLma) && s.cs.l;
  std::array<SegmentPlan, 5> plans;
  const auto segments = data_segments(s);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const x86::Segment& seg = *segments[i];
    const std::string name = kDataNames[i];
    const bool ss = i == 4;
    SegmentPlan& plan = plans[i];
    if (!real && (seg.unusable || !seg.present)) {
      if (!null_selector(seg.selector) || (seg.selector & 4))
        return unloadable(name + ".selector", "a null selector (0-3) for an unusable segment",
                          seg.selector);
      if (ss && !long_code) return unloadable("ss.unusable", "a usable SS outside 64-bit mode", 1);
      plan.selector = seg.selector;
      plan.fixed_slot = true;
      continue;
    }
    // A present code or data descriptor that a load at CPL 0 accepts (SDM vol. 3A §5.10.4.1).
    if (seg.unusable || !seg.present || !seg.s)
      return unloadable(name + ".type", "a usable, present code or data segment (s = 1)", seg.type);
    if ((seg.type & kTypeCode) && !(seg.type & kTypeWritable))
      return unloadable(name + ".type", "a readable segment", seg.type);
    if (!(seg.type & kTypeAccessed))
      return unloadable(name + ".type", "the accessed bit (a segment load sets it)", seg.type);
    if (ss && ((seg.type & kTypeCode) || !(seg.type & kTypeWritable) || seg.dpl != 0))
      return unloadable("ss.type", "writable data with DPL 0", seg.type);
    CLOISTER_TRY(plan.descriptor, descriptor(seg, name));
    // Real mode: limit and attributes from a spare slot, then the reload sets selector and base.
    if (real && seg.base == std::uint64_t{seg.selector} << 4) {
      plan.real_mode_reload = true;
      continue;
    }
    if (null_selector(seg.selector) || (seg.selector & 4))
      return unloadable(name + ".selector", "a GDT selector (not null, TI = 0)", seg.selector);
    if (ss && (seg.selector & 3) != 0) return unloadable("ss.selector", "RPL 0", seg.selector);
    if (!(seg.type & kTypeConforming && seg.type & kTypeCode) && seg.dpl < (seg.selector & 3))
      return unloadable(name + ".dpl", "at least the selector's RPL", seg.dpl);
    plan.selector = seg.selector;
    plan.fixed_slot = true;
  }
  return plans;
}

}  // namespace

Status check_loadable(const x86::Regs& regs, const x86::Sregs& s, std::uint64_t writable_efer) {
  constexpr std::uint64_t kRflagsVm = 1ull << 17;
  if (regs.rflags & kRflagsVm) return unloadable("rflags.vm", "0 (no virtual-8086 mode)", 1);
  if (!(s.cr0 & x86::kCr0Et))
    return unloadable("cr0.et", "1 (the engine's CR0.ET is fixed at 1)", s.cr0);
  if ((s.cr0 & x86::kCr0Pg) && !(s.cr0 & x86::kCr0Pe))
    return unloadable("cr0", "PE wherever PG is set", s.cr0);
  if (s.efer & ~writable_efer)
    return unloadable("efer", "only bits the engine lets software set (" + hex(writable_efer) + ")",
                      s.efer);
  const bool lma = s.efer & x86::kEferLma;
  if (lma != ((s.cr0 & x86::kCr0Pg) && (s.efer & x86::kEferLme)))
    return unloadable("efer.lma", "LMA = CR0.PG && EFER.LME", s.efer);
  if (lma && !(s.cr4 & x86::kCr4Pae)) return unloadable("cr4.pae", "1 in long mode", s.cr4);
  const x86::Segment& cs = s.cs;
  if (!cs.present || !cs.s || !(cs.type & kTypeCode) || !(cs.type & kTypeAccessed))
    return unloadable("cs.type", "a present, accessed code segment", cs.type);
  if (null_selector(cs.selector) || (cs.selector & 7) != 0 || cs.dpl != 0)
    return unloadable("cs.selector",
                      "a GDT selector with RPL 0 and DPL 0 (the loader reaches CPL 0 only)",
                      cs.selector);
  if (lma && cs.base != 0) return unloadable("cs.base", "0 in long mode", cs.base);
  if (lma && cs.l && cs.db) return unloadable("cs.db", "0 with cs.l = 1", 1);
  if (!(s.cr0 & x86::kCr0Pe) && cs.db)
    return unloadable("cs.db", "0 in real mode (a 16-bit code segment)", 1);
  CLOISTER_TRY(auto data, plan_data_segments(s));
  // Segments sharing a GDT slot must share its descriptor.
  CLOISTER_TRY(std::uint64_t cs_descriptor, descriptor(cs, "cs"));
  std::vector<std::pair<std::uint16_t, std::uint64_t>> slots = {
      {static_cast<std::uint16_t>(cs.selector >> 3), cs_descriptor}};
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (!data[i].fixed_slot || !data[i].descriptor) continue;
    const std::uint16_t index = data[i].selector >> 3;
    for (const auto& [taken, d] : slots)
      if (taken == index && d != *data[i].descriptor)
        return unloadable(std::string(kDataNames[i]) + ".selector",
                          "a selector no other segment register uses with other attributes",
                          data[i].selector);
    slots.emplace_back(index, *data[i].descriptor);
  }
  return {};
}

Result<Loader> Loader::create() {
  CLOISTER_TRY(HostPages window, HostPages::allocate(kLoaderWindow.size));
  // Page tables identity-mapping the 2 MiB page that holds the window (SDM vol. 3A §4.5).
  auto put = [&](std::uint64_t offset, std::uint64_t value) {
    std::memcpy(window.data() + offset, &value, sizeof value);
  };
  constexpr std::uint64_t kPresentWritable = 0x3, kLarge = 0x80;
  put(kPml4Offset + ((kWindow >> 39) & 511) * 8, (kWindow + kPdptOffset) | kPresentWritable);
  put(kPdptOffset + ((kWindow >> 30) & 511) * 8, (kWindow + kPdOffset) | kPresentWritable);
  put(kPdOffset + ((kWindow >> 21) & 511) * 8,
      (kWindow & ~0x1fffffull) | kLarge | kPresentWritable);
  const LoaderLayout& layout = cloister_emu_loader_layout;
  std::memcpy(window.data() + kCodeOffset, cloister_emu_loader_code, layout.size);
  return Loader(std::move(window));
}

namespace {

// Processor state that is neither Regs nor Sregs, carried across the return to the reset state:
// x87 data registers, control/status/tag words, XMM registers, MXCSR, and the MSRs of system
// calls, PAT and TSC_AUX.
constexpr uc_x86_reg kPreservedRegisters[] = {
    UC_X86_REG_FP0,   UC_X86_REG_FP1,   UC_X86_REG_FP2,   UC_X86_REG_FP3,   UC_X86_REG_FP4,
    UC_X86_REG_FP5,   UC_X86_REG_FP6,   UC_X86_REG_FP7,   UC_X86_REG_FPCW,  UC_X86_REG_FPSW,
    UC_X86_REG_FPTAG, UC_X86_REG_XMM0,  UC_X86_REG_XMM1,  UC_X86_REG_XMM2,  UC_X86_REG_XMM3,
    UC_X86_REG_XMM4,  UC_X86_REG_XMM5,  UC_X86_REG_XMM6,  UC_X86_REG_XMM7,  UC_X86_REG_XMM8,
    UC_X86_REG_XMM9,  UC_X86_REG_XMM10, UC_X86_REG_XMM11, UC_X86_REG_XMM12, UC_X86_REG_XMM13,
    UC_X86_REG_XMM14, UC_X86_REG_XMM15, UC_X86_REG_MXCSR};
constexpr std::uint32_t kPreservedMsrs[] = {
    0x174,      0x175,      0x176,        // IA32_SYSENTER_CS/ESP/EIP
    0x277,                                // IA32_PAT
    0xc0000081, 0xc0000082, 0xc0000083,   // STAR, LSTAR, CSTAR
    0xc0000084, 0xc0000102, 0xc0000103};  // FMASK, KERNEL_GS_BASE, TSC_AUX

struct PreservedState {
  std::array<std::array<std::uint8_t, 16>, std::size(kPreservedRegisters)> registers{};
  std::array<std::uint64_t, std::size(kPreservedMsrs)> msrs{};
};

Result<PreservedState> save_preserved(const Engine& engine) {
  PreservedState state;
  for (std::size_t i = 0; i < std::size(kPreservedRegisters); ++i)
    CLOISTER_CHECK_OK(engine.read_raw(kPreservedRegisters[i], state.registers[i].data()));
  for (std::size_t i = 0; i < std::size(kPreservedMsrs); ++i) {
    CLOISTER_TRY(state.msrs[i], engine.read_msr(kPreservedMsrs[i]));
  }
  return state;
}

Status restore_preserved(Engine& engine, const PreservedState& state) {
  for (std::size_t i = 0; i < std::size(kPreservedRegisters); ++i)
    CLOISTER_CHECK_OK(engine.write_raw(kPreservedRegisters[i], state.registers[i].data()));
  for (std::size_t i = 0; i < std::size(kPreservedMsrs); ++i)
    CLOISTER_CHECK_OK(engine.write_msr(kPreservedMsrs[i], state.msrs[i]));
  return {};
}

// A system segment (TR, LDTR) in the engine's descriptor-cache form: the attribute bits of the
// descriptor's high word (what QEMU keeps as a segment's flags).
uc_x86_mmr system_segment(const x86::Segment& s) {
  uc_x86_mmr mmr{};
  mmr.selector = s.selector;
  mmr.base = s.base;
  mmr.limit = s.limit;
  mmr.flags = (std::uint32_t{s.type} << 8) | (std::uint32_t{s.s} << 12) |
              (std::uint32_t{s.dpl} << 13) | (std::uint32_t{s.present && !s.unusable} << 15) |
              (std::uint32_t{s.l} << 21) | (std::uint32_t{s.db} << 22) | (std::uint32_t{s.g} << 23);
  return mmr;
}

// The parameter block, written field by field at the offsets the program uses.
class Params {
 public:
  explicit Params(std::uint8_t* block) : block_(block) { std::memset(block_, 0, 0x100); }
  template <typename T>
  void put(std::uint64_t offset, T value) {
    std::memcpy(block_ + offset, &value, sizeof value);
  }

 private:
  std::uint8_t* block_;
};

// Hands borrowed hole ranges back to the map however the load ends.
class Borrowed {
 public:
  explicit Borrowed(PhysicalMap& map) : map_(map) {}
  Status borrow(PageRange range, void* host) {
    CLOISTER_CHECK_OK(map_.borrow(range, host));
    ranges_.push_back(range);
    return {};
  }
  Status give_back() {
    Status result;
    for (const auto& r : ranges_)
      if (auto st = map_.give_back(r); !st && result) result = st;
    ranges_.clear();
    return result;
  }
  ~Borrowed() { (void)give_back(); }

 private:
  PhysicalMap& map_;
  std::vector<PageRange> ranges_;
};

}  // namespace

Status Loader::load(Engine& engine, PhysicalMap& map, const x86::Regs& regs, const x86::Sregs& s,
                    std::uint64_t writable_efer, std::optional<std::uint32_t>& exception) {
  CLOISTER_CHECK_OK(check_loadable(regs, s, writable_efer));
  CLOISTER_TRY(auto data, plan_data_segments(s));
  CLOISTER_TRY(std::uint64_t cs_descriptor, descriptor(s.cs, "cs"));

  // The GDT: the target's descriptors at their selectors, the loader's in spare slots.
  std::uint8_t* gdt = window_.data() + kGdtOffset;
  std::memset(gdt, 0, kGdtSize);
  std::vector<bool> used(kGdtSize / 8, false);
  used[0] = true;
  auto set_slot = [&](std::uint16_t selector, std::uint64_t value) {
    used[selector >> 3] = true;
    std::memcpy(gdt + (selector & ~7u), &value, sizeof value);
  };
  set_slot(s.cs.selector, cs_descriptor);
  for (const auto& plan : data)
    if (plan.fixed_slot && plan.descriptor) set_slot(plan.selector, *plan.descriptor);
  std::size_t next_spare = 1;
  auto spare = [&](std::uint64_t value) {
    while (used[next_spare]) ++next_spare;
    const auto selector = static_cast<std::uint16_t>(next_spare << 3);
    set_slot(selector, value);
    return selector;
  };
  const std::uint16_t code32 = spare(kLoaderCode32);
  const std::uint16_t data32 = spare(kLoaderData32);
  for (auto& plan : data)
    if (plan.real_mode_reload) plan.selector = spare(*plan.descriptor);

  // Where the program enters and stops: the tail for the target's code-segment size, reached
  // through the target's CS. Its linear address is CS.base + EIP, unmasked (as the translator
  // computes it), which for a base above the window is 4 GiB above it: the alias.
  const LoaderLayout& layout = cloister_emu_loader_layout;
  const bool long_mode = s.efer & x86::kEferLma;
  const bool real = !(s.cr0 & x86::kCr0Pe);
  std::uint32_t tail, tail_end;
  if (long_mode)
    tail = layout.tail64, tail_end = layout.tail64_end;
  else if (s.cs.db)
    tail = layout.tail32, tail_end = layout.tail32_end;
  else
    tail = layout.tail16, tail_end = real ? layout.tail16_end : layout.tail16_protected_end;
  const std::uint64_t tail_address = kWindow + kCodeOffset + tail;
  const auto eip = static_cast<std::uint32_t>(tail_address - s.cs.base);
  const std::uint64_t stop_eip = std::uint64_t{eip} + (tail_end - tail);
  const std::uint64_t until = s.cs.base + stop_eip;
  const bool through_alias = s.cs.base + eip >= (1ull << 32);

  Params p(window_.data() + kParamsOffset);
  p.put<std::uint16_t>(EMU_P_LOADER_GDTR, static_cast<std::uint16_t>(kGdtSize - 1));
  p.put<std::uint64_t>(EMU_P_LOADER_GDTR + 2, kWindow + kGdtOffset);
  p.put<std::uint32_t>(EMU_P_LOADER_CR3, static_cast<std::uint32_t>(kWindow + kPml4Offset));
  p.put<std::uint16_t>(EMU_P_LOADER_CODE32, code32);
  p.put<std::uint16_t>(EMU_P_LOADER_DATA32, data32);
  // Paging goes on after the program (below), which thus never fetches through the target's
  // page tables.
  p.put<std::uint64_t>(EMU_P_CR0, s.cr0 & ~x86::kCr0Pg);
  p.put<std::uint64_t>(EMU_P_CR3, s.cr3);
  p.put<std::uint64_t>(EMU_P_CR4, s.cr4);
  p.put<std::uint64_t>(EMU_P_EFER, s.efer);
  p.put<std::uint16_t>(EMU_P_CS, s.cs.selector);
  p.put<std::uint32_t>(EMU_P_EIP, eip);
  p.put<std::uint32_t>(EMU_P_PARAMS_FROM_CS,
                       static_cast<std::uint32_t>(kWindow + kParamsOffset - s.cs.base));
  const auto segments = data_segments(s);
  for (std::size_t i = 0; i < data.size(); ++i) {
    p.put<std::uint16_t>(EMU_P_DS + 2 * i, data[i].selector);
    p.put<std::uint16_t>(EMU_P_REAL_DS + 2 * i, segments[i]->selector);
    p.put<std::uint8_t>(EMU_P_RELOAD_DS + i, data[i].real_mode_reload);
  }

  CLOISTER_TRY(PreservedState preserved, save_preserved(engine));
  // The state the engine was opened in: 64-bit mode, paging off, no exception in flight (the
  // engine never delivers one, so it would count the next exception as a double fault).
  CLOISTER_CHECK_OK(engine.restore_reset_state());
  {
    // Borrowing the window (mapping it) also flushes the engine's TLB, which may still hold the
    // guest's translations of these linear addresses.
    Borrowed borrowed(map);
    CLOISTER_CHECK_OK(borrowed.borrow(kLoaderWindow, window_.data()));
    if (through_alias)
      CLOISTER_CHECK_OK(borrowed.borrow(kLoaderAlias, window_.data() + kCodeOffset));
    exception.reset();
    const std::uint64_t entry = long_mode ? layout.long_entry : layout.legacy_entry;
    if (uc_err err = engine.start(kWindow + kCodeOffset + entry, until); err != UC_ERR_OK)
      return unicorn_error("uc_emu_start (emu register loader)", err);
    CLOISTER_TRY(std::uint64_t rip, engine.read(UC_X86_REG_RIP));
    if (rip != stop_eip || exception)
      return Error("emu register loader: stopped at EIP " + hex(rip) + " instead of " +
                   hex(stop_eip) +
                   (exception ? " after exception " + std::to_string(*exception) : ""));
    // The block that stopped the program at `until` (an empty one that halts) must not stop the
    // guest should it ever run code there in the same modes. Dropped while paging is still off:
    // with the target's paging the translation could fault, and the engine, which never
    // delivers exceptions, would count the next one as a double fault. The program's own blocks
    // stay: its code never changes, and the window's mapping changes flush the engine's TLB and
    // jump cache.
    CLOISTER_CHECK_OK(engine.invalidate_translations(until - 1, until + 1));
    // CR0.PG by register write. The program's CR0 write has done everything else a CR0 write
    // does (protection and FPU mode bits); what setting PG adds is EFER.LMA, which a long-mode
    // target already has from the reset state, and a TLB flush, which giving the window back
    // performs.
    CLOISTER_CHECK_OK(engine.write(UC_X86_REG_CR0, s.cr0));
    CLOISTER_CHECK_OK(borrowed.give_back());
  }

  // What the program set must read back as asked.
  struct Check {
    const char* name;
    uc_x86_reg reg;
    std::uint64_t expected;
  };
  const Check checks[] = {
      {"cr0", UC_X86_REG_CR0, s.cr0},       {"cr3", UC_X86_REG_CR3, s.cr3},
      {"cr4", UC_X86_REG_CR4, s.cr4},       {"cs", UC_X86_REG_CS, s.cs.selector},
      {"ds", UC_X86_REG_DS, s.ds.selector}, {"es", UC_X86_REG_ES, s.es.selector},
      {"fs", UC_X86_REG_FS, s.fs.selector}, {"gs", UC_X86_REG_GS, s.gs.selector},
      {"ss", UC_X86_REG_SS, s.ss.selector}};
  for (const auto& c : checks) {
    CLOISTER_TRY(std::uint64_t found, engine.read(c.reg));
    if (found != c.expected)
      return Error("emu register loader: " + std::string(c.name) + " reads " + hex(found) +
                   " after the load, expected " + hex(c.expected));
  }
  CLOISTER_TRY(std::uint64_t efer, engine.read_msr(0xc0000080));
  if (efer != s.efer)
    return Error("emu register loader: efer reads " + hex(efer) + " after the load, expected " +
                 hex(s.efer));

  // The rest through the register API, which sets these exactly.
  const uc_x86_mmr tr = system_segment(s.tr), ldtr = system_segment(s.ldt);
  const uc_x86_mmr gdtr{0, s.gdt.base, s.gdt.limit, 0}, idtr{0, s.idt.base, s.idt.limit, 0};
  CLOISTER_CHECK_OK(engine.write_raw(UC_X86_REG_TR, &tr));
  CLOISTER_CHECK_OK(engine.write_raw(UC_X86_REG_LDTR, &ldtr));
  CLOISTER_CHECK_OK(engine.write_raw(UC_X86_REG_GDTR, &gdtr));
  CLOISTER_CHECK_OK(engine.write_raw(UC_X86_REG_IDTR, &idtr));
  CLOISTER_CHECK_OK(engine.write(UC_X86_REG_FS_BASE, s.fs.base));
  CLOISTER_CHECK_OK(engine.write(UC_X86_REG_GS_BASE, s.gs.base));
  CLOISTER_CHECK_OK(engine.write(UC_X86_REG_CR2, s.cr2));
  CLOISTER_CHECK_OK(engine.write_regs(regs));
  return restore_preserved(engine, preserved);
}

}  // namespace cloister::vmm::emu
