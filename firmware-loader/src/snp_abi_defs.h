// Layouts from the SEV Secure Nested Paging Firmware ABI specification (AMD #56860) that the
// loader fills in. Private to firmware-loader.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloister::fw::snp_abi {

// Guest policy (§4.3): bit 17 is reserved and must be one.
inline constexpr std::uint64_t kPolicyMustBeOne = 1ull << 17;

// ID_BLOCK (Table 75), 96 bytes.
inline constexpr std::size_t kIdBlockLd = 0x00;        // 48
inline constexpr std::size_t kIdBlockFamilyId = 0x30;  // 16
inline constexpr std::size_t kIdBlockImageId = 0x40;   // 16
inline constexpr std::size_t kIdBlockVersion = 0x50;   // u32, 1
inline constexpr std::size_t kIdBlockGuestSvn = 0x54;  // u32
inline constexpr std::size_t kIdBlockPolicy = 0x58;    // u64
inline constexpr std::uint32_t kIdBlockVersionValue = 1;

// ID_AUTH_INFO (Table 76), 4096 bytes.
inline constexpr std::size_t kIdAuthIdKeyAlgo = 0x000;      // u32
inline constexpr std::size_t kIdAuthAuthorKeyAlgo = 0x004;  // u32
inline constexpr std::size_t kIdAuthIdBlockSig = 0x040;     // 512: R (72) then S (72)
inline constexpr std::size_t kIdAuthIdKey = 0x240;          // 1028: public key (Table 121)
inline constexpr std::size_t kIdAuthIdKeySig = 0x680;       // 512
inline constexpr std::size_t kIdAuthAuthorKey = 0x880;      // 1028

// ECDSA public key (Table 121): u32 curve, QX (72) at 0x04, QY (72) at 0x4C.
inline constexpr std::size_t kPublicKeyQx = 0x04;
inline constexpr std::size_t kPublicKeyQy = 0x4C;
inline constexpr std::size_t kEcdsaComponentSize = 72;

}  // namespace cloister::fw::snp_abi
