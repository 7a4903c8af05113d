// The machine a Cloister guest runs on, as far as its launch depends on it: where guest RAM
// lies and the limits cloister-vmm enforces. cloister-vmm backs exactly ram_ranges() and a TDX
// plan's TD HOB (tdx.h) describes exactly those ranges, so what the VMM backs and what the
// firmware is told, and measures, cannot differ.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cloister/common/file.h"
#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::fw {

// RAM above this address moves to 4 GiB: [kMmioGapStart, 4 GiB) holds the VMM's devices, the
// IOAPIC, the local APICs and the firmware.
inline constexpr std::uint64_t kMmioGapStart = 0xc0000000;

// The most vCPUs cloister-vmm runs: xAPIC IDs are 8 bits, 0xff is the broadcast ID, and the
// IOAPIC takes the ID after the last vCPU.
inline constexpr std::uint32_t kMaxVcpus = 254;

// The most guest RAM cloister-vmm backs (1 TiB). IGVM files declaring more memory than this
// are refused.
inline constexpr std::uint64_t kMaxGuestMemory = 1ull << 40;

// The guest RAM when none is given: cloister-vmm's default, 128 MiB.
inline constexpr std::uint64_t kDefaultGuestMemory = 128ull << 20;

// The boot files cloister-vmm loads and cloister-measure measures, whole, in memory.
// Firmware (OVMF, TDVF, a COCONUT-SVSM image): cloister-vmm maps it read-only to end at 4 GiB,
// in a flash window of at most 16 MiB [0xff000000, 4 GiB).
inline constexpr FileLimit kFirmwareFileLimit{
    16u << 20,
    "a firmware image can be (it is mapped to end at 4 GiB in at most 16 MiB; OVMF is "
    "2 or 4 MiB)"};
// A kernel (bzImage or ELF): x86-64 Linux maps at most 1 GiB of kernel image
// (KERNEL_IMAGE_SIZE, arch/x86/include/asm/page_64_types.h).
inline constexpr FileLimit kKernelFileLimit{
    1u << 30, "a kernel can be (x86-64 Linux maps at most 1 GiB of kernel image)"};
// An initrd: it is placed in RAM below the MMIO gap at kMmioGapStart.
inline constexpr FileLimit kInitrdFileLimit{
    kMmioGapStart, "an initrd can be (it must fit in guest RAM below the MMIO gap at 3 GiB)"};

// Guest RAM for `ram_bytes` bytes: [0, min(ram_bytes, kMmioGapStart)) and the rest from 4 GiB,
// in ascending order; empty ranges are left out.
std::vector<GpaRange> ram_ranges(std::uint64_t ram_bytes);

// A memory size as cloister-vmm's config and cloister-measure take it: "512M", "2G", "65536K"
// or a byte count; suffixes are binary (K = 1024) and may be spelled K/k/KiB, M/m/MiB, G/g/GiB.
// Fails, quoting the text, on anything else and on values that overflow 64 bits.
Result<std::uint64_t> parse_memory_size(std::string_view text);

}  // namespace cloister::fw
