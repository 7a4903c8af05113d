// One Unicorn 2 engine, the processor an emu vCPU runs on, and the host memory the emulator
// hands to engines. Every Unicorn failure becomes an error naming the call and uc_strerror().
// The library itself is loaded on first use (dlopen): a VMM running on KVM never pays the
// dynamic linking of its 19 MiB, about 10 ms at every process start.
#pragma once

#include <unicorn/unicorn.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "cloister/common/result.h"
#include "cloister/vmm/arch/x86/regs.h"

namespace cloister::vmm::emu {

// Loads libunicorn.so.2 (once) and checks it is Unicorn 2 with x86; the error says which package
// provides it. Everything below needs it loaded.
Status load_unicorn();

// "uc_mem_map_ptr (0xfeb00000 + 0x20000): Invalid memory mapping (UC_ERR_MAP)".
Error unicorn_error(std::string_view call, uc_err err);

// Anonymous, page-aligned host memory (mmap), zero-filled; for memory the emulator itself maps
// into engines (the loader's window, the CPUID probe page).
class HostPages {
 public:
  static Result<HostPages> allocate(std::size_t size);
  ~HostPages();
  HostPages(HostPages&& other) noexcept;
  HostPages& operator=(HostPages&&) = delete;
  HostPages(const HostPages&) = delete;

  std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  HostPages(std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t* data_;
  std::size_t size_;
};

// A linear address no instruction can have (non-canonical), for runs that stop only on their own.
inline constexpr std::uint64_t kNoStopAddress = 1ull << 63;

// A Unicorn engine in UC_MODE_64, the only mode whose CPUID reports long mode and therefore the
// only one in which EFER.LME can be set. Closed on destruction. Not thread-safe: one thread at a
// time, and none while another runs start().
class Engine {
 public:
  // Loads the library if need be.
  static Result<std::unique_ptr<Engine>> open();
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Guest-physical [gpa, gpa + size) backed by `host`, readable and executable; writable unless
  // `read_only`, in which case writes reach the UC_HOOK_MEM_WRITE_PROT hooks and are discarded.
  Status map_ram(std::uint64_t gpa, std::uint64_t size, void* host, bool read_only);
  // [gpa, gpa + size) as MMIO: accesses call `on_read`/`on_write` with the offset into it.
  Status map_mmio(std::uint64_t gpa, std::uint64_t size, uc_cb_mmio_read_t on_read,
                  uc_cb_mmio_write_t on_write, void* user);
  Status unmap(std::uint64_t gpa, std::uint64_t size);
  // uc_hook_add over the whole address space; `insn` selects the instruction of UC_HOOK_INSN.
  Status add_hook(int type, void* callback, void* user, int insn = 0);

  // Registers up to 64 bits wide; selectors read as their 16 bits.
  Result<std::uint64_t> read(uc_x86_reg reg) const;
  Status write(uc_x86_reg reg, std::uint64_t value);
  // Registers of any width (x87, XMM, descriptor-table registers), through `value`.
  Status read_raw(uc_x86_reg reg, void* value) const;
  Status write_raw(uc_x86_reg reg, const void* value);
  Result<std::uint64_t> read_msr(std::uint32_t index) const;
  Status write_msr(std::uint32_t index, std::uint64_t value);
  // General registers, RIP and RFLAGS.
  Result<x86::Regs> read_regs() const;
  Status write_regs(const x86::Regs& regs);
  // Guest-physical memory, through the engine's own mappings.
  Status read_memory(std::uint64_t gpa, void* out, std::size_t size) const;

  // Runs from RIP `begin` until the instruction at linear address `until`, HLT, stop() or a
  // fault. Returns Unicorn's own code: guest faults are results for the caller to classify.
  uc_err start(std::uint64_t begin, std::uint64_t until);
  // uc_emu_stop: start() returns at the end of the current translated block.
  void stop();

  // Records the engine's current processor state as the one restore_reset_state() returns to.
  Status save_reset_state();
  Status restore_reset_state();
  // Drops the translated blocks holding code at linear [begin, end), translated through the
  // engine's current paging. (Unicorn 2.0.1's full flush, UC_CTL_TB_FLUSH, clears the whole
  // 1 GiB translation buffer with memset: seconds, and a gigabyte of resident memory.)
  Status invalidate_translations(std::uint64_t begin, std::uint64_t end);

 private:
  explicit Engine(uc_engine* uc) : uc_(uc) {}
  uc_engine* uc_;
  uc_context* reset_state_ = nullptr;
};

}  // namespace cloister::vmm::emu
