#include "hypervisor/emu/physical_map.h"

#include <algorithm>

#include "cloister/vmm/format.h"
#include "hypervisor/emu/lapic.h"

namespace cloister::vmm::emu {
namespace {

bool by_begin(const PageRange& a, const PageRange& b) {
  return a.begin < b.begin;
}

// The ranges of `candidates` inside [begin, end), in address order.
std::vector<PageRange> inside(std::span<const PageRange> candidates, std::uint64_t begin,
                              std::uint64_t end) {
  std::vector<PageRange> out;
  for (const auto& r : candidates)
    if (r.begin >= begin && r.end() <= end) out.push_back(r);
  std::sort(out.begin(), out.end(), by_begin);
  return out;
}

}  // namespace

Result<std::unique_ptr<PhysicalMap>> PhysicalMap::build(Engine& engine,
                                                        std::span<const MemorySlot> slots,
                                                        std::uint64_t top, MmioHandler holes,
                                                        std::optional<MmioHandler> lapic,
                                                        std::span<const PageRange> borrowable) {
  std::unique_ptr<PhysicalMap> map(new PhysicalMap(engine));
  map->holes_ = std::move(holes);
  map->lapic_ = std::move(lapic);
  std::vector<PageRange> taken;
  for (const auto& slot : slots) {
    CLOISTER_CHECK_OK(map->map_slot(slot, borrowable));
    taken.push_back({slot.guest_phys_addr, slot.size});
  }
  if (map->lapic_) {
    CLOISTER_CHECK_OK(map->map_hole({kLapicBase, kLapicSize}, *map->lapic_));
    taken.push_back({kLapicBase, kLapicSize});
  }
  std::sort(taken.begin(), taken.end(), by_begin);
  // The holes between the taken ranges, cut around the borrowable ranges they contain.
  std::uint64_t cursor = 0;
  taken.push_back({top, 0});
  for (const auto& next : taken) {
    if (next.begin < cursor)
      return Error("emu: guest memory at " + hex(next.begin) + " overlaps the range before it");
    for (const auto& cut : inside(borrowable, cursor, next.begin)) {
      if (cut.begin > cursor)
        CLOISTER_CHECK_OK(map->map_hole({cursor, cut.begin - cursor}, map->holes_));
      CLOISTER_CHECK_OK(map->map_hole(cut, map->holes_));
      map->borrowable_.push_back({cut, &map->regions_.back()});
      cursor = cut.end();
    }
    if (next.begin > cursor)
      CLOISTER_CHECK_OK(map->map_hole({cursor, next.begin - cursor}, map->holes_));
    cursor = std::max(cursor, next.end());
  }
  return map;
}

// A slot as RAM, in pieces around the borrowable ranges inside it.
Status PhysicalMap::map_slot(const MemorySlot& slot, std::span<const PageRange> borrowable) {
  auto* host = static_cast<std::uint8_t*>(slot.host_address);
  const std::uint64_t end = slot.guest_phys_addr + slot.size;
  std::uint64_t cursor = slot.guest_phys_addr;
  auto map_piece = [&](std::uint64_t begin, std::uint64_t piece_end) {
    return engine_.map_ram(begin, piece_end - begin, host + (begin - slot.guest_phys_addr),
                           slot.read_only);
  };
  for (const auto& cut : inside(borrowable, cursor, end)) {
    if (cut.begin > cursor) CLOISTER_CHECK_OK(map_piece(cursor, cut.begin));
    CLOISTER_CHECK_OK(map_piece(cut.begin, cut.end()));
    borrowable_.push_back(
        {cut, nullptr, host + (cut.begin - slot.guest_phys_addr), slot.read_only});
    cursor = cut.end();
  }
  if (end > cursor) CLOISTER_CHECK_OK(map_piece(cursor, end));
  return {};
}

Status PhysicalMap::map_hole(PageRange range, const MmioHandler& handler) {
  regions_.push_back({&handler, range.begin});
  return engine_.map_mmio(range.begin, range.size, on_read, on_write, &regions_.back());
}

Result<const PhysicalMap::Borrowable*> PhysicalMap::find(PageRange range) const {
  for (const auto& b : borrowable_)
    if (b.range.begin == range.begin && b.range.size == range.size) return &b;
  return Error("emu: " + hex(range.begin) + " + " + hex(range.size) +
               " is not mapped on its own (PhysicalMap::build's borrowable ranges)");
}

Status PhysicalMap::borrow(PageRange range, void* host) {
  if (auto b = find(range); !b) return b.error();
  CLOISTER_CHECK_OK(engine_.unmap(range.begin, range.size));
  return engine_.map_ram(range.begin, range.size, host, false);
}

Status PhysicalMap::give_back(PageRange range) {
  CLOISTER_TRY(const Borrowable* b, find(range));
  CLOISTER_CHECK_OK(engine_.unmap(range.begin, range.size));
  if (b->hole) return engine_.map_mmio(range.begin, range.size, on_read, on_write, b->hole);
  return engine_.map_ram(range.begin, range.size, b->host, b->read_only);
}

std::uint64_t PhysicalMap::on_read(uc_engine*, std::uint64_t offset, unsigned size, void* user) {
  const auto* region = static_cast<const Region*>(user);
  return region->handler->read(region->base + offset, size);
}

void PhysicalMap::on_write(uc_engine*, std::uint64_t offset, unsigned size, std::uint64_t value,
                           void* user) {
  const auto* region = static_cast<const Region*>(user);
  region->handler->write(region->base + offset, size, value);
}

}  // namespace cloister::vmm::emu
