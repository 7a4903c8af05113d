// The guest-physical address space of one engine: the VM's memory slots as RAM (read-only slots
// as ROM), the local APIC page when the VM has an irqchip, and every other page below the top of
// the address space as MMIO whose accesses become exits, so unassigned addresses behave as they
// do under KVM. Some ranges are mapped on their own, for the loader to borrow while it runs.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "cloister/vmm/hypervisor/hypervisor.h"
#include "hypervisor/emu/engine.h"

namespace cloister::vmm::emu {

struct MmioHandler {
  std::function<std::uint64_t(std::uint64_t gpa, unsigned size)> read;
  std::function<void(std::uint64_t gpa, unsigned size, std::uint64_t value)> write;
};

struct PageRange {
  std::uint64_t begin = 0;
  std::uint64_t size = 0;
  std::uint64_t end() const { return begin + size; }
};

class PhysicalMap {
 public:
  // Maps everything below `top` into `engine`: `slots` as RAM, `lapic` (if any) on the local
  // APIC page, `holes` everywhere else. Each range in `borrowable` gets a mapping of its own; it
  // must lie inside one slot or one hole. Slots must not overlap each other or the APIC page.
  static Result<std::unique_ptr<PhysicalMap>> build(Engine& engine,
                                                    std::span<const MemorySlot> slots,
                                                    std::uint64_t top, MmioHandler holes,
                                                    std::optional<MmioHandler> lapic,
                                                    std::span<const PageRange> borrowable);
  PhysicalMap(const PhysicalMap&) = delete;
  PhysicalMap& operator=(const PhysicalMap&) = delete;

  // Maps `host` (RAM) over a borrowable range, until give_back() restores what it was.
  Status borrow(PageRange range, void* host);
  Status give_back(PageRange range);

 private:
  struct Region {
    const MmioHandler* handler;
    std::uint64_t base;
  };
  // A borrowable range and what it is when not borrowed: a hole (`hole`) or RAM.
  struct Borrowable {
    PageRange range;
    Region* hole = nullptr;
    void* host = nullptr;
    bool read_only = false;
  };
  explicit PhysicalMap(Engine& engine) : engine_(engine) {}
  Status map_hole(PageRange range, const MmioHandler& handler);
  Status map_slot(const MemorySlot& slot, std::span<const PageRange> borrowable);
  Result<const Borrowable*> find(PageRange range) const;
  static std::uint64_t on_read(uc_engine*, std::uint64_t offset, unsigned size, void* user);
  static void on_write(uc_engine*, std::uint64_t offset, unsigned size, std::uint64_t value,
                       void* user);

  Engine& engine_;
  MmioHandler holes_;
  std::optional<MmioHandler> lapic_;
  std::deque<Region> regions_;  // stable addresses: each is a mapping's user data
  std::vector<Borrowable> borrowable_;
};

}  // namespace cloister::vmm::emu
