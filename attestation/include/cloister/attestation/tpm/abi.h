// TPM 2.0 constants this library reads (TCG TPM 2.0 Library, Part 2: Structures, rev 1.59).
#pragma once

#include <cstdint>

namespace cloister::attestation::tpm {

// TPM_GENERATED_VALUE (§6.2): the magic every TPMS_ATTEST starts with, "\xffTCG".
inline constexpr std::uint32_t kGeneratedValue = 0xff544347;

// TPM_ST (§6.9): the attestation structure types.
inline constexpr std::uint16_t kStAttestQuote = 0x8018;

// TPM_ALG_ID (§6.3) of the hash algorithms PCR banks and event logs use.
inline constexpr std::uint16_t kAlgSha1 = 0x0004;
inline constexpr std::uint16_t kAlgSha256 = 0x000B;
inline constexpr std::uint16_t kAlgSha384 = 0x000C;
inline constexpr std::uint16_t kAlgSha512 = 0x000D;
inline constexpr std::uint16_t kAlgSm3_256 = 0x0012;

// IMPLEMENTATION_PCR for a PC Client TPM (PC Client Platform TPM Profile §4.6): PCR 0..23.
inline constexpr unsigned kPcrCount = 24;

// PCRs 17..22 are the DRTM PCRs; they reset to all 0xFF, the others to zero (PC Client Platform
// TPM Profile, table "PCR Initialization").
inline constexpr unsigned kFirstDrtmPcr = 17;
inline constexpr unsigned kLastDrtmPcr = 22;

}  // namespace cloister::attestation::tpm
