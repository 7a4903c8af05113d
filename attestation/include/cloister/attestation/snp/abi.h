// SEV-SNP constants from AMD's SEV Secure Nested Paging Firmware ABI Specification (pub. 56860),
// Table 23 "ATTESTATION_REPORT Structure" and the GUEST_POLICY / PLATFORM_INFO / TCB_VERSION
// tables, as cross-checked against real reports v2-v5 (research/snp.md §b).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloister::attestation::snp {

inline constexpr std::size_t kReportSize = 0x4A0;  // 1184
// The signature covers bytes 0x000-0x29F.
inline constexpr std::size_t kSignedSize = 0x2A0;
inline constexpr std::uint32_t kMinReportVersion = 2;
inline constexpr std::uint32_t kMaxReportVersion = 5;
// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384.
inline constexpr std::uint32_t kSignatureAlgoEcdsaP384Sha384 = 1;

namespace offset {
inline constexpr std::size_t kVersion = 0x000;
inline constexpr std::size_t kGuestSvn = 0x004;
inline constexpr std::size_t kPolicy = 0x008;
inline constexpr std::size_t kFamilyId = 0x010;
inline constexpr std::size_t kImageId = 0x020;
inline constexpr std::size_t kVmpl = 0x030;
inline constexpr std::size_t kSignatureAlgo = 0x034;
inline constexpr std::size_t kCurrentTcb = 0x038;
inline constexpr std::size_t kPlatformInfo = 0x040;
inline constexpr std::size_t kSignerInfo = 0x048;
inline constexpr std::size_t kReserved04C = 0x04C;
inline constexpr std::size_t kReportData = 0x050;
inline constexpr std::size_t kMeasurement = 0x090;
inline constexpr std::size_t kHostData = 0x0C0;
inline constexpr std::size_t kIdKeyDigest = 0x0E0;
inline constexpr std::size_t kAuthorKeyDigest = 0x110;
inline constexpr std::size_t kReportId = 0x140;
inline constexpr std::size_t kReportIdMa = 0x160;
inline constexpr std::size_t kReportedTcb = 0x180;
inline constexpr std::size_t kCpuidFamId = 0x188;  // v3+
inline constexpr std::size_t kCpuidModId = 0x189;  // v3+
inline constexpr std::size_t kCpuidStep = 0x18A;   // v3+
inline constexpr std::size_t kChipId = 0x1A0;
inline constexpr std::size_t kCommittedTcb = 0x1E0;
inline constexpr std::size_t kCurrentBuild = 0x1E8;
inline constexpr std::size_t kCurrentMinor = 0x1E9;
inline constexpr std::size_t kCurrentMajor = 0x1EA;
inline constexpr std::size_t kReserved1EB = 0x1EB;
inline constexpr std::size_t kCommittedBuild = 0x1EC;
inline constexpr std::size_t kCommittedMinor = 0x1ED;
inline constexpr std::size_t kCommittedMajor = 0x1EE;
inline constexpr std::size_t kReserved1EF = 0x1EF;
inline constexpr std::size_t kLaunchTcb = 0x1F0;
inline constexpr std::size_t kLaunchMitVector = 0x1F8;   // v5
inline constexpr std::size_t kCurrentMitVector = 0x200;  // v5
inline constexpr std::size_t kSignature = 0x2A0;
inline constexpr std::size_t kSignatureR = 0x2A0;  // 72 bytes, little-endian
inline constexpr std::size_t kSignatureS = 0x2E8;  // 72 bytes, little-endian
inline constexpr std::size_t kSignatureReserved = 0x330;
}  // namespace offset

inline constexpr std::size_t kSignatureComponentSize = 72;  // R and S fields
inline constexpr std::size_t kP384ScalarSize = 48;          // bytes 48-71 of R and S are zero

// GUEST_POLICY bits.
namespace policy_bit {
inline constexpr unsigned kSmt = 16;
inline constexpr unsigned kReservedMustBeOne = 17;
inline constexpr unsigned kMigrateMa = 18;
inline constexpr unsigned kDebug = 19;
inline constexpr unsigned kSingleSocket = 20;
inline constexpr unsigned kCxlAllow = 21;
inline constexpr unsigned kMemAes256Xts = 22;
inline constexpr unsigned kRaplDis = 23;
inline constexpr unsigned kCiphertextHiding = 24;
inline constexpr unsigned kPageSwapDisable = 25;
inline constexpr unsigned kFirstReserved = 26;  // bits 63:26 must be zero
}  // namespace policy_bit

// PLATFORM_INFO bits.
namespace platform_bit {
inline constexpr unsigned kSmtEn = 0;
inline constexpr unsigned kTsmeEn = 1;
inline constexpr unsigned kEccEn = 2;
inline constexpr unsigned kRaplDis = 3;
inline constexpr unsigned kCiphertextHidingEn = 4;
inline constexpr unsigned kAliasCheckComplete = 5;
// Bit 6 is set on a real Turin report; its meaning is not published in the sources we have.
inline constexpr unsigned kUnknown6 = 6;
inline constexpr unsigned kTioEn = 7;
}  // namespace platform_bit

// SIGNER_INFO (offset 0x48): bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY.
inline constexpr std::uint32_t kSignerInfoAuthorKeyEn = 1u << 0;
inline constexpr std::uint32_t kSignerInfoMaskChipKey = 1u << 1;
inline constexpr unsigned kSignerInfoSigningKeyShift = 2;
inline constexpr std::uint32_t kSignerInfoSigningKeyMask = 0x7;
inline constexpr std::uint32_t kSignerInfoReservedMask = ~0x1Fu;  // bits 31:5

}  // namespace cloister::attestation::snp
