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

// ---- Guest messages (SNP_GUEST_REQUEST; ABI "Message Header Format", MSG_REPORT_REQ/RSP) ----
// A message is a 96-byte header and an AES-256-GCM encrypted payload, in one 4 KiB page. The IV
// is the u64 sequence number followed by four zero bytes; the AAD is header bytes 0x30-0x5F.
// cloister-vmm's sim_abi.h carries the same numbers for guests written in C.
namespace guest_msg {
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kHeaderSize = 0x60;
inline constexpr std::size_t kAuthTag = 0x00;  // 32 bytes; AES-256-GCM uses the first 16
inline constexpr std::size_t kAuthTagSize = 16;
inline constexpr std::size_t kSeqno = 0x20;  // u64
inline constexpr std::size_t kAlgo = 0x30;   // u8
inline constexpr std::size_t kHdrVersion = 0x31;
inline constexpr std::size_t kHdrSize = 0x32;  // u16
inline constexpr std::size_t kMsgType = 0x34;  // u8
inline constexpr std::size_t kMsgVersion = 0x35;
inline constexpr std::size_t kMsgSize = 0x36;  // u16: payload bytes
inline constexpr std::size_t kVmpck = 0x3c;    // u8: the VMPCK that encrypts the message
inline constexpr std::size_t kAadOffset = 0x30;
inline constexpr std::size_t kAadSize = 0x30;
inline constexpr std::uint8_t kAlgoAes256Gcm = 1;
inline constexpr std::uint8_t kHeaderVersion = 1;
inline constexpr std::uint8_t kMsgVersion1 = 1;
inline constexpr std::uint8_t kTypeReportReq = 5;
inline constexpr std::uint8_t kTypeReportRsp = 6;
// MSG_REPORT_REQ: REPORT_DATA[64], u32 VMPL, u32 KEY_SEL (0 either key, 1 VCEK, 2 VLEK), 24
// reserved bytes.
inline constexpr std::size_t kReportReqSize = 96;
inline constexpr std::size_t kReportReqVmpl = 64;
inline constexpr std::size_t kReportReqKeySel = 68;
// MSG_REPORT_RSP: u32 STATUS, u32 REPORT_SIZE, 24 reserved bytes, the report.
inline constexpr std::size_t kReportRspSize = 0x20 + kReportSize;
inline constexpr std::size_t kReportRspReport = 0x20;
}  // namespace guest_msg

// Firmware status codes (ABI "Status Codes").
inline constexpr std::uint32_t kStatusSuccess = 0x00;
inline constexpr std::uint32_t kStatusInvalidParam = 0x16;
// The message sequence number is out of order or exhausted.
inline constexpr std::uint32_t kStatusAeadOflow = 0x1d;

// ---- Secrets page (ABI "Secrets Page Format"; Linux struct snp_secrets_page) ----------------
namespace secrets {
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kVersion = 0x000;  // u32
inline constexpr std::size_t kFms = 0x008;     // u32: CPUID Fn0000_0001_EAX (family/model/stepping)
inline constexpr std::size_t kVmpck0 = 0x020;  // VMPCK0..3, 32 bytes each
inline constexpr std::size_t kVmpckSize = 32;
}  // namespace secrets

}  // namespace cloister::attestation::snp
