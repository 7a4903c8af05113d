// The BIOS e820 memory map handed to Linux in boot_params (ACPI 6.5 §15, "System Address Map
// Interfaces"; Linux arch/x86/include/uapi/asm/e820.h for the 20-byte entry layout).
#pragma once

#include <cstdint>
#include <vector>

namespace cloister::vmm::x86 {

enum class E820Type : std::uint32_t { kRam = 1, kReserved = 2 };

struct E820Entry {
  std::uint64_t addr;
  std::uint64_t size;
  E820Type type;
  bool operator==(const E820Entry&) const = default;
};

// Linux accepts at most 128 entries in boot_params (E820_MAX_ENTRIES_ZEROPAGE).
inline constexpr std::size_t kE820MaxEntries = 128;

// The map for `ram_size` bytes of RAM laid out as layout.h describes: conventional memory up
// to the EBDA, the EBDA and legacy ROM area reserved, RAM from 1 MiB up to the MMIO gap, and
// the rest of RAM from 4 GiB. Requires ram_size > 1 MiB.
std::vector<E820Entry> build_e820(std::uint64_t ram_size);

}  // namespace cloister::vmm::x86
