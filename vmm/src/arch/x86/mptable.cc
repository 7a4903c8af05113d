#include "cloister/vmm/arch/x86/mptable.h"

#include <cstring>

namespace cloister::vmm::x86 {
namespace {

using namespace mptable;

std::uint8_t checksum(ByteView bytes) {
  std::uint8_t sum = 0;
  for (auto b : bytes) sum = static_cast<std::uint8_t>(sum + b);
  return static_cast<std::uint8_t>(-sum);
}

void put_interrupt(Bytes& out, std::uint8_t entry, std::uint8_t type, std::uint8_t source_irq,
                   std::uint8_t dest_id, std::uint8_t dest_pin) {
  const std::uint8_t e[kOtherEntrySize] = {entry,         type,       0,       0,
                                           0 /* bus 0 */, source_irq, dest_id, dest_pin};
  out.insert(out.end(), e, e + kOtherEntrySize);
}

}  // namespace

Bytes build_mptable(std::uint32_t vcpus, std::uint64_t address, std::uint32_t lapic_address,
                    std::uint32_t ioapic_address) {
  const auto ioapic_id = static_cast<std::uint8_t>(vcpus);
  Bytes entries;
  std::uint16_t count = 0;
  for (std::uint32_t id = 0; id < vcpus; ++id, ++count) {
    std::uint8_t e[kProcessorEntrySize] = {};
    e[0] = kEntryProcessor;
    e[1] = static_cast<std::uint8_t>(id);                           // local APIC ID
    e[2] = 0x14;                                                    // local APIC version
    e[3] = static_cast<std::uint8_t>(0x01 | (id == 0 ? 0x02 : 0));  // enabled, bootstrap
    store_le32(e, 4, 0x600);                                        // CPU signature: family 6
    store_le32(e, 8, 0x201);                                        // feature flags: FPU, APIC
    entries.insert(entries.end(), e, e + kProcessorEntrySize);
  }
  const std::uint8_t bus[kOtherEntrySize] = {kEntryBus, 0, 'I', 'S', 'A', ' ', ' ', ' '};
  entries.insert(entries.end(), bus, bus + kOtherEntrySize);
  ++count;
  std::uint8_t ioapic[kOtherEntrySize] = {kEntryIoapic, ioapic_id, 0x11, 0x01};
  store_le32(ioapic, 4, ioapic_address);
  entries.insert(entries.end(), ioapic, ioapic + kOtherEntrySize);
  ++count;
  for (std::uint8_t irq = 0; irq < kIsaIrqs; ++irq, ++count)
    put_interrupt(entries, kEntryIoInterrupt, irq == 0 ? 3 /* ExtINT */ : 0 /* INT */, irq,
                  ioapic_id, irq);
  put_interrupt(entries, kEntryLocalInterrupt, 3 /* ExtINT */, 0, 0xff, 0);  // LINT0, all CPUs
  put_interrupt(entries, kEntryLocalInterrupt, 1 /* NMI */, 0, 0xff, 1);     // LINT1
  count += 2;

  Bytes header(kHeaderSize, 0);
  std::memcpy(header.data(), "PCMP", 4);
  store_le16(header, 4, static_cast<std::uint16_t>(kHeaderSize + entries.size()));
  header[6] = 4;  // spec revision 1.4
  std::memcpy(header.data() + 8, "CLOISTER", 8);
  std::memcpy(header.data() + 16, "CLOISTER-VMM", 12);
  store_le16(header, 34, count);
  store_le32(header, 36, lapic_address);
  Bytes table = header;
  table.insert(table.end(), entries.begin(), entries.end());
  table[7] = checksum(table);

  Bytes out(kFloatingPointerSize, 0);
  std::memcpy(out.data(), "_MP_", 4);
  store_le32(out, 4, static_cast<std::uint32_t>(address + kFloatingPointerSize));
  out[8] = 1;  // length in 16-byte units
  out[9] = 4;  // spec revision 1.4
  out[10] = checksum(out);
  out.insert(out.end(), table.begin(), table.end());
  return out;
}

}  // namespace cloister::vmm::x86
