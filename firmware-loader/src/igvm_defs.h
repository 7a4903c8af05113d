// Constants of the IGVM file format, version 1 (microsoft/igvm igvm_defs/src/lib.rs).
// Private to firmware-loader. All integers are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloister::fw::igvm {

// IGVM_FIXED_HEADER: {u32 magic "IGVM", u32 format_version, u32 variable_header_offset,
// u32 variable_header_size, u32 total_file_size, u32 checksum}. The checksum is the CRC-32
// (ISO-HDLC, as crc32fast) of the fixed header with checksum = 0 followed by the variable
// header section.
inline constexpr std::uint32_t kMagic = 0x4D564749;  // "IGVM"
inline constexpr std::uint32_t kFormatVersion1 = 1;
inline constexpr std::size_t kFixedHeaderSize = 24;
inline constexpr std::size_t kChecksumOffset = 20;

// IGVM_VHS_VARIABLE_HEADER {u32 type, u32 length}; each header starts 8-byte aligned and the
// padding is zero. Bit 31 of the type marks headers a loader may ignore.
inline constexpr std::size_t kVariableHeaderSize = 8;
inline constexpr std::uint32_t kIgnorableTypeBit = 0x80000000u;

inline constexpr std::uint32_t kRangePlatformFirst = 0x1, kRangePlatformLast = 0x100;
inline constexpr std::uint32_t kRangeInitFirst = 0x101, kRangeInitLast = 0x200;
inline constexpr std::uint32_t kRangeDirectiveFirst = 0x301, kRangeDirectiveLast = 0x400;

// Header types and their structure sizes.
inline constexpr std::uint32_t kSupportedPlatform = 0x1;      // 16 bytes
inline constexpr std::uint32_t kGuestPolicy = 0x101;          // 16
inline constexpr std::uint32_t kRelocatableRegion = 0x102;    // 48
inline constexpr std::uint32_t kPageTableRelocation = 0x103;  // 32
inline constexpr std::uint32_t kCorimDocument = 0x104;        // 16
inline constexpr std::uint32_t kCorimSignature = 0x105;       // 16
inline constexpr std::uint32_t kParameterArea = 0x301;        // 16
inline constexpr std::uint32_t kPageData = 0x302;             // 24
inline constexpr std::uint32_t kParameterInsert = 0x303;      // 16
inline constexpr std::uint32_t kVpContext = 0x304;            // 20
inline constexpr std::uint32_t kRequiredMemory = 0x305;       // 24
inline constexpr std::uint32_t kSnpIdBlock = 0x30B;           // 696
inline constexpr std::uint32_t kErrorRange = 0x30D;           // 16
inline constexpr std::uint32_t kVbsMeasurement = 0x311;       // 864

inline constexpr std::size_t kSupportedPlatformSize = 16;
inline constexpr std::size_t kGuestPolicySize = 16;
inline constexpr std::size_t kRelocatableRegionSize = 48;
inline constexpr std::size_t kPageTableRelocationSize = 32;
inline constexpr std::size_t kCorimDataSize = 16;
inline constexpr std::size_t kParameterAreaSize = 16;
inline constexpr std::size_t kPageDataSize = 24;
inline constexpr std::size_t kParameterInsertSize = 16;
inline constexpr std::size_t kVpContextSize = 20;
inline constexpr std::size_t kRequiredMemorySize = 24;
inline constexpr std::size_t kParameterSize = 8;  // IGVM_VHS_PARAMETER {u32 index, u32 offset}
inline constexpr std::size_t kSnpIdBlockSize = 696;
inline constexpr std::size_t kErrorRangeSize = 16;
inline constexpr std::size_t kVbsMeasurementSize = 864;

// IgvmPlatformType.
inline constexpr std::uint8_t kPlatformNative = 0, kPlatformVsm = 1, kPlatformSevSnp = 2,
                              kPlatformTdx = 3, kPlatformSev = 4, kPlatformSevEs = 5,
                              kPlatformCca = 6;
inline constexpr std::uint16_t kSevSnpPlatformVersion = 1;  // IGVM_SEV_SNP_PLATFORM_VERSION
inline constexpr std::uint16_t kTdxPlatformVersion = 1;     // IGVM_TDX_PLATFORM_VERSION

// IgvmPageDataFlags and IgvmPageDataType.
inline constexpr std::uint32_t kPageFlag2Mb = 1u << 0;
inline constexpr std::uint32_t kPageFlagUnmeasured = 1u << 1;
inline constexpr std::uint32_t kPageFlagShared = 1u << 2;
inline constexpr std::uint16_t kDataNormal = 0, kDataSecrets = 1, kDataCpuid = 2, kDataCpuidXf = 3;

// IGVM_VHS_SNP_ID_BLOCK field offsets.
inline constexpr std::size_t kIdMask = 0, kIdAuthorKeyEnabled = 4, kIdReserved = 5, kIdLd = 8,
                             kIdFamilyId = 56, kIdImageId = 72, kIdVersion = 88, kIdGuestSvn = 92,
                             kIdIdKeyAlgorithm = 96, kIdAuthorKeyAlgorithm = 100,
                             kIdIdKeySignature = 104, kIdIdPublicKey = 248,
                             kIdAuthorKeySignature = 400, kIdAuthorPublicKey = 544;
inline constexpr std::size_t kIdSignatureSize = 144;  // r_comp[72], s_comp[72]
inline constexpr std::size_t kIdPublicKeySize = 152;  // u32 curve, u32 reserved, qx[72], qy[72]

}  // namespace cloister::fw::igvm
