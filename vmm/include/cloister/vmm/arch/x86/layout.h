// The guest-physical layout of a Cloister x86-64 VM. Low addresses follow the Linux boot
// protocol conventions Firecracker uses (boot.rst "The 64-bit boot protocol"); the MMIO gap
// below 4 GiB holds the virtio-mmio devices, the IOAPIC, the local APICs and the firmware.
// Where guest RAM lies around the gap is fw::ram_ranges() (firmware_loader/machine.h), which
// the launch plans' TD HOB describes too.
#pragma once

#include <cstdint>

namespace cloister::vmm::x86::layout {

inline constexpr std::uint64_t kGdtAddr = 0x500;
inline constexpr std::uint64_t kIdtAddr = 0x520;
inline constexpr std::uint64_t kZeroPageAddr = 0x7000;  // boot_params
inline constexpr std::uint64_t kBootStackTop = 0x8ff0;
inline constexpr std::uint64_t kPml4Addr = 0x9000;
inline constexpr std::uint64_t kPdptAddr = 0xa000;
inline constexpr std::uint64_t kPdAddr = 0xb000;  // identity-maps the first 1 GiB
inline constexpr std::uint64_t kCmdlineAddr = 0x20000;
inline constexpr std::uint64_t kCmdlineMaxSize = 0x10000;  // including the NUL
inline constexpr std::uint64_t kEbdaStart = 0x9fc00;
inline constexpr std::uint64_t kHighMemStart = 0x100000;

inline constexpr std::uint64_t kFourGiB = 1ull << 32;
inline constexpr std::uint64_t kVirtioMmioBase = 0xd0000000;
inline constexpr std::uint64_t kVirtioMmioStride = 0x1000;
inline constexpr std::uint32_t kVirtioMmioSlots = 8;
inline constexpr std::uint32_t kVirtioFirstIrq = 5;  // slot i uses IRQ 5 + i
inline constexpr std::uint64_t kIoapicAddr = 0xfec00000;
inline constexpr std::uint64_t kLapicAddr = 0xfee00000;

// Legacy I/O ports.
inline constexpr std::uint16_t kCom1Port = 0x3f8;
inline constexpr std::uint32_t kCom1Irq = 4;
inline constexpr std::uint16_t kI8042DataPort = 0x60;
inline constexpr std::uint16_t kI8042CommandPort = 0x64;
inline constexpr std::uint16_t kDebugExitPort = 0xf4;  // QEMU isa-debug-exit, iobase=0xf4 iosize=4
inline constexpr std::uint16_t kFwCfgPort = 0x510;     // selector; data at 0x511

}  // namespace cloister::vmm::x86::layout
