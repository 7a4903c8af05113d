#include "cloister/vmm/arch/x86/e820.h"

#include "cloister/firmware_loader/machine.h"
#include "cloister/vmm/arch/x86/layout.h"

namespace cloister::vmm::x86 {

std::vector<E820Entry> build_e820(std::uint64_t ram_size) {
  std::vector<E820Entry> map;
  map.push_back({0, layout::kEbdaStart, E820Type::kRam});
  map.push_back(
      {layout::kEbdaStart, layout::kHighMemStart - layout::kEbdaStart, E820Type::kReserved});
  for (const fw::GpaRange& ram : fw::ram_ranges(ram_size)) {
    if (ram.gpa != 0) {
      map.push_back({ram.gpa, ram.size, E820Type::kRam});
    } else if (ram.size > layout::kHighMemStart) {
      map.push_back({layout::kHighMemStart, ram.size - layout::kHighMemStart, E820Type::kRam});
    }
  }
  return map;
}

}  // namespace cloister::vmm::x86
