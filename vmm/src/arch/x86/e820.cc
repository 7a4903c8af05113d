#include "cloister/vmm/arch/x86/e820.h"

#include "cloister/vmm/arch/x86/layout.h"

namespace cloister::vmm::x86 {

std::vector<E820Entry> build_e820(std::uint64_t ram_size) {
  std::vector<E820Entry> map;
  map.push_back({0, layout::kEbdaStart, E820Type::kRam});
  map.push_back(
      {layout::kEbdaStart, layout::kHighMemStart - layout::kEbdaStart, E820Type::kReserved});
  const std::uint64_t low = layout::low_ram_size(ram_size);
  if (low > layout::kHighMemStart)
    map.push_back({layout::kHighMemStart, low - layout::kHighMemStart, E820Type::kRam});
  if (const std::uint64_t high = layout::high_ram_size(ram_size); high > 0)
    map.push_back({layout::kFourGiB, high, E820Type::kRam});
  return map;
}

}  // namespace cloister::vmm::x86
