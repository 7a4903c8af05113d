// Offsets in the SEV-ES save area (the VMSA page), AMD64 APM vol. 2, Table B-4 "VMSA Layout,
// State Save Area for SEV-ES" (Linux struct sev_es_save_area). Private to firmware-loader.
#pragma once

#include <cstddef>

namespace cloister::fw::vmsa {

inline constexpr std::size_t kSize = 0x1000;

// Segment registers: {u16 selector, u16 attrib, u32 limit, u64 base}, 16 bytes each.
inline constexpr std::size_t kSegmentSize = 16;
inline constexpr std::size_t kEs = 0x000;
inline constexpr std::size_t kCs = 0x010;
inline constexpr std::size_t kSs = 0x020;
inline constexpr std::size_t kDs = 0x030;
inline constexpr std::size_t kFs = 0x040;
inline constexpr std::size_t kGs = 0x050;
inline constexpr std::size_t kGdtr = 0x060;
inline constexpr std::size_t kLdtr = 0x070;
inline constexpr std::size_t kIdtr = 0x080;
inline constexpr std::size_t kTr = 0x090;

inline constexpr std::size_t kEfer = 0x0D0;
inline constexpr std::size_t kCr4 = 0x148;
inline constexpr std::size_t kCr3 = 0x150;
inline constexpr std::size_t kCr0 = 0x158;
inline constexpr std::size_t kDr7 = 0x160;
inline constexpr std::size_t kDr6 = 0x168;
inline constexpr std::size_t kRflags = 0x170;
inline constexpr std::size_t kRip = 0x178;
inline constexpr std::size_t kRsp = 0x1D8;
inline constexpr std::size_t kRax = 0x1F8;
inline constexpr std::size_t kGPat = 0x268;
inline constexpr std::size_t kRcx = 0x308;
inline constexpr std::size_t kRdx = 0x310;
inline constexpr std::size_t kRbx = 0x318;
inline constexpr std::size_t kRbp = 0x328;
inline constexpr std::size_t kRsi = 0x330;
inline constexpr std::size_t kRdi = 0x338;
inline constexpr std::size_t kR8 = 0x340;  // r8..r15 follow, 8 bytes apart
inline constexpr std::size_t kSevFeatures = 0x3B0;
inline constexpr std::size_t kXcr0 = 0x3E8;
inline constexpr std::size_t kMxcsr = 0x408;   // u32
inline constexpr std::size_t kX87Fcw = 0x410;  // u16

}  // namespace cloister::fw::vmsa
