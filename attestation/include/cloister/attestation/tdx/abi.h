// Intel TDX DCAP quote constants: the ECDSA quote format v4 and v5 (Intel's sgx_quote_4.h and
// sgx_quote_5.h in SGXDataCenterAttestationPrimitives, "Intel TDX DCAP Quoting Library API"
// appendix A), as summarised in research/tdx.md §a and cross-checked against the real quotes in
// shared/vectors/tdx. Integers are little-endian; ECDSA signatures are raw r||s and public keys
// raw x||y, each coordinate 32 bytes big-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace cloister::attestation::tdx {

// ---- Quote header (48 bytes, v4 and v5) ----------------------------------------------------
inline constexpr std::size_t kHeaderSize = 48;
inline constexpr std::uint16_t kQuoteVersion4 = 4;
inline constexpr std::uint16_t kQuoteVersion5 = 5;
// att_key_type 2: ECDSA-256-with-P-256 (3, P-384, is defined but no QE produces it).
inline constexpr std::uint16_t kAttKeyTypeEcdsaP256 = 2;
inline constexpr std::uint32_t kTeeTypeSgx = 0x00000000;
inline constexpr std::uint32_t kTeeTypeTdx = 0x00000081;
// Intel's QE vendor ID 939A7233-F79C-4CA9-940A-0DB3957F0607, in quote byte order.
inline constexpr std::array<std::uint8_t, 16> kIntelQeVendorId = {
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

namespace header_offset {
inline constexpr std::size_t kVersion = 0;
inline constexpr std::size_t kAttKeyType = 2;
inline constexpr std::size_t kTeeType = 4;
inline constexpr std::size_t kReserved = 8;  // 4 bytes; see research/tdx.md §a on QE/PCE SVN
inline constexpr std::size_t kQeVendorId = 12;
inline constexpr std::size_t kUserData = 28;  // 20 bytes
}  // namespace header_offset

// ---- v5 body descriptor: u16 body_type, u32 body_size ----------------------------------------
inline constexpr std::size_t kBodyDescriptorSize = 6;
inline constexpr std::uint16_t kBodyTypeSgxEnclaveReport = 1;
inline constexpr std::uint16_t kBodyTypeTdReport10 = 2;
inline constexpr std::uint16_t kBodyTypeTdReport15 = 3;

// ---- TD report body (TDREPORT's TDINFO + TEE_TCB_INFO fields as the quote carries them) -------
inline constexpr std::size_t kTdReport10Size = 584;
inline constexpr std::size_t kTdReport15Size = 648;
namespace body_offset {
inline constexpr std::size_t kTeeTcbSvn = 0;  // 16
inline constexpr std::size_t kMrSeam = 16;    // 48
inline constexpr std::size_t kMrSignerSeam = 64;
inline constexpr std::size_t kSeamAttributes = 112;  // 8
inline constexpr std::size_t kTdAttributes = 120;    // 8, u64
inline constexpr std::size_t kXfam = 128;            // 8, u64
inline constexpr std::size_t kMrTd = 136;
inline constexpr std::size_t kMrConfigId = 184;
inline constexpr std::size_t kMrOwner = 232;
inline constexpr std::size_t kMrOwnerConfig = 280;
inline constexpr std::size_t kRtmr0 = 328;  // 4 x 48
inline constexpr std::size_t kReportData = 520;
inline constexpr std::size_t kTeeTcbSvn2 = 584;   // TD report 1.5 only, 16
inline constexpr std::size_t kMrServiceTd = 600;  // TD report 1.5 only, 48
}  // namespace body_offset

// TD_ATTRIBUTES bits (TDX module ABI, "TD Attributes" table).
namespace td_attribute_bit {
inline constexpr unsigned kDebug = 0;
// Bits 0-7 are the TUD ("TD under debug") group: any of them set makes the TD untrusted.
inline constexpr unsigned kHgsPlusProf = 4;
inline constexpr unsigned kPerfProf = 5;
inline constexpr unsigned kPmtProf = 6;
inline constexpr std::uint64_t kTudMask = 0xff;
inline constexpr unsigned kSeptVeDisable = 28;
inline constexpr unsigned kMigratable = 29;
inline constexpr unsigned kPks = 30;
inline constexpr unsigned kKl = 31;
inline constexpr unsigned kPerfmon = 63;
}  // namespace td_attribute_bit

// ---- Signature data (Ecdsa256BitQuoteV4AuthData) ----------------------------------------------
inline constexpr std::size_t kEcdsaSignatureSize = 64;  // r||s
inline constexpr std::size_t kEcdsaPublicKeySize = 64;  // x||y
// Certification data types (QuoteConstants.h PCK_ID_*).
inline constexpr std::uint16_t kCertDataPpidCleartext = 1;
inline constexpr std::uint16_t kCertDataPpidRsa2048 = 2;
inline constexpr std::uint16_t kCertDataPpidRsa3072 = 3;
inline constexpr std::uint16_t kCertDataPckCleartext = 4;
inline constexpr std::uint16_t kCertDataPckChain = 5;
inline constexpr std::uint16_t kCertDataQeReport = 6;

// ---- QE report: an SGX REPORT body (384 bytes) -----------------------------------------------
inline constexpr std::size_t kQeReportSize = 384;
namespace qe_offset {
inline constexpr std::size_t kCpuSvn = 0;        // 16
inline constexpr std::size_t kMiscSelect = 16;   // u32
inline constexpr std::size_t kAttributes = 48;   // 16
inline constexpr std::size_t kMrEnclave = 64;    // 32
inline constexpr std::size_t kMrSigner = 128;    // 32
inline constexpr std::size_t kIsvProdId = 256;   // u16
inline constexpr std::size_t kIsvSvn = 258;      // u16
inline constexpr std::size_t kReportData = 320;  // 64
}  // namespace qe_offset

// ---- TDREPORT_STRUCT (Intel TDX Module ABI, TDG.MR.REPORT): 1024 bytes ------------------------
// REPORTMACSTRUCT (256) | TEE_TCB_INFO (239) | reserved (17) | TDINFO_STRUCT (512).
inline constexpr std::size_t kTdReportStructSize = 1024;
inline constexpr std::size_t kTeeTcbInfoSize = 239;
inline constexpr std::size_t kTdInfoSize = 512;
inline constexpr std::uint8_t kReportTypeTdx = 0x81;  // REPORTTYPE.TYPE
namespace tdreport_offset {
// REPORTMACSTRUCT
inline constexpr std::size_t kReportType = 0;       // TYPE, SUBTYPE, VERSION, reserved
inline constexpr std::size_t kCpuSvn = 16;          // 16
inline constexpr std::size_t kTeeTcbInfoHash = 32;  // 48: SHA-384 of TEE_TCB_INFO
inline constexpr std::size_t kTeeInfoHash = 80;     // 48: SHA-384 of TDINFO_STRUCT
inline constexpr std::size_t kReportData = 128;     // 64
inline constexpr std::size_t kMac = 224;            // 32
// TEE_TCB_INFO, relative to its start at 256
inline constexpr std::size_t kTeeTcbInfo = 256;
inline constexpr std::size_t kValid = 0;  // 8
inline constexpr std::size_t kTeeTcbSvn = 8;
inline constexpr std::size_t kMrSeam = 24;
inline constexpr std::size_t kMrSignerSeam = 72;
inline constexpr std::size_t kSeamAttributes = 120;  // 8
inline constexpr std::size_t kTeeTcbSvn2 = 128;      // 16 (TDX 1.5)
inline constexpr std::size_t kTeeTcbInfoReserved = 144;
// TDINFO_STRUCT, relative to its start at 512
inline constexpr std::size_t kTdInfo = 512;
inline constexpr std::size_t kAttributes = 0;  // u64
inline constexpr std::size_t kXfam = 8;        // u64
inline constexpr std::size_t kMrTd = 16;
inline constexpr std::size_t kMrConfigId = 64;
inline constexpr std::size_t kMrOwner = 112;
inline constexpr std::size_t kMrOwnerConfig = 160;
inline constexpr std::size_t kRtmr = 208;        // 4 x 48
inline constexpr std::size_t kServTdHash = 400;  // 48 (TDX 1.5)
inline constexpr std::size_t kTdInfoReserved = 448;
}  // namespace tdreport_offset

}  // namespace cloister::attestation::tdx
