// The SEV-SNP ATTESTATION_REPORT (1184 bytes, versions 2-5) as a typed value.
//
// decode_snp_report() is the one parser of report bytes. It fails only when the size is wrong;
// every other violation of the ABI (unknown version or signature algorithm, non-zero reserved
// bytes or bits) is recorded in SnpReport::format_problems, each naming the field, so that a
// verifier can still run (and report) the signature check over a malformed report.
// parse_snp_report() is the strict form for callers that only want well-formed reports.
// encode_snp_report() is their inverse: for every report that decodes without format problems,
// encode_snp_report(decode_snp_report(bytes)) reproduces the bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/snp/abi.h"
#include "cloister/attestation/snp/product.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::snp {

// Security patch levels of one TCB_VERSION, decoded with a product's layout.
struct TcbParts {
  std::optional<std::uint8_t> fmc;  // Turin and later only
  std::uint8_t bl = 0;
  std::uint8_t tee = 0;
  std::uint8_t snp = 0;
  std::uint8_t ucode = 0;

  // "bl 2, tee 0, snp 5, ucode 68" (prefixed by "fmc N, " when present).
  std::string to_string() const;
  // Component-wise >= (fmc compared only when both have it).
  bool at_least(const TcbParts& minimum) const;
  bool operator==(const TcbParts&) const = default;
};

// TCB_VERSION: 8 bytes whose meaning depends on the product.
//   Milan, Genoa:  [0] BL, [1] TEE, [2..5] reserved, [6] SNP, [7] UCODE
//   Turin, Venice: [0] FMC, [1] BL, [2] TEE, [3] SNP, [4..6] reserved, [7] UCODE
class TcbVersion {
 public:
  TcbVersion() = default;
  explicit TcbVersion(std::uint64_t raw) : raw_(raw) {}

  std::uint64_t raw() const { return raw_; }
  // The 8 bytes in report order; to_hex() of them is how KDS and our tools print a TCB.
  std::array<std::uint8_t, 8> bytes() const;
  std::string to_hex() const;
  TcbParts parts(Product product) const;
  // The inverse of parts(): fails when `parts` has an FMC SPL and the product's layout has none,
  // or lacks one and the layout needs it.
  static Result<TcbVersion> from_parts(Product product, const TcbParts& parts);
  // True when the bytes reserved in this product's layout are zero.
  bool reserved_bytes_zero(Product product) const;
  bool operator==(const TcbVersion&) const = default;

 private:
  std::uint64_t raw_ = 0;
};

struct FirmwareVersion {
  std::uint8_t major = 0;
  std::uint8_t minor = 0;
  std::uint8_t build = 0;
  std::string to_string() const;  // "1.55.61"
  bool operator==(const FirmwareVersion&) const = default;
};

enum class SigningKey { kVcek, kVlek, kNone, kReserved };
std::string_view to_string(SigningKey key);

struct SignerInfo {
  bool author_key_en = false;
  bool mask_chip_key = false;
  SigningKey signing_key = SigningKey::kVcek;
  std::uint32_t signing_key_raw = 0;
};

struct GuestPolicy {
  std::uint8_t abi_minor = 0;
  std::uint8_t abi_major = 0;
  bool smt = false;
  bool reserved_bit17 = false;
  bool migrate_ma = false;
  bool debug = false;
  bool single_socket = false;
  bool cxl_allow = false;
  bool mem_aes_256_xts = false;
  bool rapl_dis = false;
  bool ciphertext_hiding = false;
  bool page_swap_disable = false;
};

struct PlatformInfo {
  bool smt_en = false;
  bool tsme_en = false;
  bool ecc_en = false;
  bool rapl_dis = false;
  bool ciphertext_hiding_en = false;
  bool alias_check_complete = false;
  bool unknown_bit6 = false;
  bool tio_en = false;
};

struct CpuidInfo {
  std::uint8_t family = 0;    // CPUID_FAM_ID: extended + base family
  std::uint8_t model = 0;     // CPUID_MOD_ID: (extended model << 4) | base model
  std::uint8_t stepping = 0;  // CPUID_STEP
  bool operator==(const CpuidInfo&) const = default;
};

struct SnpReport {
  std::array<std::uint8_t, kReportSize> raw{};

  std::uint32_t version = 0;
  std::uint32_t guest_svn = 0;
  std::uint64_t policy = 0;
  std::array<std::uint8_t, 16> family_id{};
  std::array<std::uint8_t, 16> image_id{};
  std::uint32_t vmpl = 0;
  std::uint32_t signature_algo = 0;
  TcbVersion current_tcb;
  std::uint64_t platform_info = 0;
  std::uint32_t signer_info = 0;
  std::array<std::uint8_t, 64> report_data{};
  std::array<std::uint8_t, 48> measurement{};
  std::array<std::uint8_t, 32> host_data{};
  std::array<std::uint8_t, 48> id_key_digest{};
  std::array<std::uint8_t, 48> author_key_digest{};
  std::array<std::uint8_t, 32> report_id{};
  std::array<std::uint8_t, 32> report_id_ma{};
  TcbVersion reported_tcb;
  std::optional<CpuidInfo> cpuid;  // v3+
  std::array<std::uint8_t, 64> chip_id{};
  TcbVersion committed_tcb;
  FirmwareVersion current_version;
  FirmwareVersion committed_version;
  TcbVersion launch_tcb;
  std::optional<std::uint64_t> launch_mit_vector;                   // v5
  std::optional<std::uint64_t> current_mit_vector;                  // v5
  std::array<std::uint8_t, kSignatureComponentSize> signature_r{};  // little-endian
  std::array<std::uint8_t, kSignatureComponentSize> signature_s{};  // little-endian

  // Every ABI violation found while decoding, each naming the field ("VERSION: expected 2, 3,
  // 4 or 5, found 6"). Empty for a well-formed report.
  std::vector<std::string> format_problems;

  GuestPolicy guest_policy() const;
  PlatformInfo platform_info_bits() const;
  SignerInfo signer() const;
  // The bytes the signature covers (0x000-0x29F).
  ByteView signed_bytes() const { return ByteView(raw).first(kSignedSize); }
  // The product named by the CPUID fields (v3+), if recognised.
  std::optional<Product> cpuid_product() const;

  bool operator==(const SnpReport&) const = default;
};

// Decodes exactly kReportSize bytes; fails only on a wrong size ("report is 1000 bytes,
// expected 1184"). See the file comment for format_problems.
Result<SnpReport> decode_snp_report(ByteView bytes);

// decode_snp_report() that also fails with the first format problem.
Result<SnpReport> parse_snp_report(ByteView bytes);

// The kReportSize bytes of `report`, written from its typed fields (`raw` and `format_problems`
// are not read); reserved fields are zero. The version decides the layout as in the decoder:
// versions 3-5 carry `cpuid`, version 5 the two mitigation vectors, and any other version
// neither. Fails, naming the field, when the optional fields do not match the version.
Result<Bytes> encode_snp_report(const SnpReport& report);

}  // namespace cloister::attestation::snp
