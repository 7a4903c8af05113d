// The register-state loader. Unicorn 2.0.1's register API cannot set a segment register's hidden
// base, limit or attributes (a CS write only changes the selector), and its CR0/CR4 writes bypass
// the mode bookkeeping of the translator, so states such as the x86 reset state (CS.selector
// 0xf000, CS.base 0xffff0000) cannot be written. The loader reaches them the way a processor
// would: it returns the engine to the state it had when opened (64-bit mode, paging off), runs a
// small program in a window of the address space it borrows for the purpose, and finishes with
// register writes for what the API does set exactly (general registers, RIP, RFLAGS, CR2, TR,
// LDTR, GDTR, IDTR, FS/GS bases). The program:
//   long-mode targets: loads a GDT holding the target's descriptors at the target's selectors,
//     CR4, EFER, CR3 and the data segments, far-returns into the target's CS and sets CR0;
//   every other target: turns paging on over its own page tables and far-returns to 32-bit
//     code, turns paging off (which leaves long mode), loads EFER, CR4, CR3 and the segments,
//     far-returns into the target's CS and sets CR0 there; a real-mode target leaves protected
//     mode with that write, keeping the descriptor caches, and then reloads the data segments
//     whose base is selector * 16 the real-mode way (which keeps their limits and attributes).
// The program's CR0 leaves paging off, so it never fetches through the target's page tables;
// CR0.PG follows by register write.
// The far return does not check EIP against the target's CS limit, so the last instructions run
// inside the target's code segment even when its base lies above the window (the reset state):
// their linear address is then 4 GiB above the window, where the loader maps its code page for
// the load (kLoaderAlias, RAM or a hole otherwise).
#pragma once

#include <cstdint>
#include <optional>

#include "cloister/vmm/arch/x86/regs.h"
#include "hypervisor/emu/engine.h"
#include "hypervisor/emu/physical_map.h"

namespace cloister::vmm::emu {

// The window: 128 KiB of the MMIO gap, clear of the virtio-mmio devices (0xd0000000), the
// IOAPIC (0xfec00000) and firmware (at least 0xff000000); guest accesses there are ordinary
// MMIO exits except while a load runs. (Unicorn 2.0.1 accesses memory at the linear address, so
// the loader's page tables and the alias below map linear = physical.)
inline constexpr PageRange kLoaderWindow{0xfeb00000, 0x20000};
// The page 4 GiB above the window's code page, the loader's while a load runs.
inline constexpr PageRange kLoaderAlias{0xfeb00000 + 0x10000 + (1ull << 32), 0x1000};

// Whether the loader can reach `sregs` with `regs`: CPL 0, no virtual-8086 mode, EFER bits the
// engine can hold (`writable_efer`), consistent control registers, and segments it can load at
// their selectors. The error names the register and field, what emu needs and what was found.
Status check_loadable(const x86::Regs& regs, const x86::Sregs& sregs, std::uint64_t writable_efer);

class Loader {
 public:
  static Result<Loader> create();

  // Loads `regs` and `sregs` (check_loadable first) into `engine`, which must be stopped and
  // have `map` as its address space. The x87, SSE and MXCSR state and the system-call, PAT and
  // TSC_AUX MSRs survive the load; debug registers do not. `exception` is where the engine's
  // interrupt hook records an exception, which would mean the program failed.
  Status load(Engine& engine, PhysicalMap& map, const x86::Regs& regs, const x86::Sregs& sregs,
              std::uint64_t writable_efer, std::optional<std::uint32_t>& exception);

 private:
  explicit Loader(HostPages window) : window_(std::move(window)) {}
  HostPages window_;
};

}  // namespace cloister::vmm::emu
