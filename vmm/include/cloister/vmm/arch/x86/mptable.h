// Intel MultiProcessor Specification 1.4 tables (chapter 4), which tell a kernel booted without
// ACPI how many CPUs there are and how ISA interrupts reach the IOAPIC. Like Firecracker, the
// VMM writes them for direct kernel boots; firmware builds its own tables.
#pragma once

#include <cstdint>

#include "cloister/common/bytes.h"

namespace cloister::vmm::x86 {

namespace mptable {
inline constexpr std::uint64_t kAddress = 0x9fc00;  // start of the EBDA, searched by Linux
inline constexpr std::uint32_t kFloatingPointerSize = 16;
inline constexpr std::uint32_t kHeaderSize = 44;
inline constexpr std::uint32_t kProcessorEntrySize = 20;
inline constexpr std::uint32_t kOtherEntrySize = 8;
inline constexpr std::uint8_t kEntryProcessor = 0, kEntryBus = 1, kEntryIoapic = 2,
                              kEntryIoInterrupt = 3, kEntryLocalInterrupt = 4;
inline constexpr std::uint32_t kIsaIrqs = 16;
}  // namespace mptable

// The floating pointer structure followed by the configuration table, for placement at
// `address`: one enabled processor entry per vCPU (APIC IDs 0..vcpus-1, 0 the bootstrap
// processor), an ISA bus, the IOAPIC (ID `vcpus`) at `ioapic_address`, ISA IRQs 0-15 routed to
// the same IOAPIC pins, and LINT0/LINT1 as ExtINT/NMI. Checksums per §4.1 and §4.2.
Bytes build_mptable(std::uint32_t vcpus, std::uint64_t address, std::uint32_t lapic_address,
                    std::uint32_t ioapic_address);

}  // namespace cloister::vmm::x86
