#include "cloister/attestation/tpm/attest.h"

#include "cloister/attestation/tpm/abi.h"
#include "cloister/common/hex.h"

namespace cloister::attestation::tpm {
namespace {

// TPM structures are big-endian; ByteReader reads little-endian.
Result<std::uint16_t> be16(ByteReader& r, std::string_view field) {
  CLOISTER_TRY(ByteView b, r.bytes(2, field));
  return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

Result<std::uint32_t> be32(ByteReader& r, std::string_view field) {
  CLOISTER_TRY(ByteView b, r.bytes(4, field));
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         b[3];
}

Result<std::uint64_t> be64(ByteReader& r, std::string_view field) {
  CLOISTER_TRY(std::uint32_t high, be32(r, field));
  CLOISTER_TRY(std::uint32_t low, be32(r, field));
  return (std::uint64_t{high} << 32) | low;
}

// A TPM2B: u16 size, then that many bytes, at most `max`.
Result<Bytes> tpm2b(ByteReader& r, std::size_t max, const std::string& field) {
  CLOISTER_TRY(std::uint16_t size, be16(r, field + " size"));
  if (size > max)
    return Error(field + ": size " + std::to_string(size) + " exceeds the " + std::to_string(max) +
                 " bytes the structure allows");
  CLOISTER_TRY(ByteView b, r.bytes(size, field));
  return Bytes(b.begin(), b.end());
}

}  // namespace

std::vector<unsigned> PcrSelection::pcrs() const {
  std::vector<unsigned> out;
  for (std::size_t i = 0; i < bitmap.size() * 8; ++i)
    if ((bitmap[i / 8] >> (i % 8)) & 1) out.push_back(static_cast<unsigned>(i));
  return out;
}

std::vector<std::pair<std::uint16_t, unsigned>> TpmsAttest::selected_pcrs() const {
  std::vector<std::pair<std::uint16_t, unsigned>> out;
  for (const auto& s : pcr_select)
    for (unsigned pcr : s.pcrs()) out.emplace_back(s.hash, pcr);
  return out;
}

std::string alg_name(std::uint16_t alg) {
  switch (alg) {
    case kAlgSha1:
      return "TPM_ALG_SHA1";
    case kAlgSha256:
      return "TPM_ALG_SHA256";
    case kAlgSha384:
      return "TPM_ALG_SHA384";
    case kAlgSha512:
      return "TPM_ALG_SHA512";
    case kAlgSm3_256:
      return "TPM_ALG_SM3_256";
    default:
      return hex_number(alg);
  }
}

std::size_t alg_digest_size(std::uint16_t alg) {
  switch (alg) {
    case kAlgSha1:
      return 20;
    case kAlgSha256:
    case kAlgSm3_256:
      return 32;
    case kAlgSha384:
      return 48;
    case kAlgSha512:
      return 64;
    default:
      return 0;
  }
}

Result<TpmsAttest> parse_tpms_attest(ByteView message) {
  // Limits from Part 2: sizeof(TPMU_NAME) = 2 + 64 + 2 (a TPMT_HA with SHA-512), TPM2B_DATA and
  // TPM2B_DIGEST hold sizeof(TPMT_HA) = 66 at most but a digest at most 64; PCR_SELECT_MAX 32
  // bytes; HASH_COUNT bounds a TPML_PCR_SELECTION at 16 entries.
  constexpr std::size_t kMaxName = 68, kMaxData = 66, kMaxDigest = 64, kMaxSelect = 32;
  constexpr std::uint32_t kMaxSelections = 16;
  ByteReader r(message);
  TpmsAttest a;
  CLOISTER_TRY(a.magic, be32(r, "TPMS_ATTEST magic"));
  if (a.magic != kGeneratedValue)
    return Error("TPMS_ATTEST magic is " + hex_number(a.magic) + ", expected " +
                 hex_number(kGeneratedValue) + " (TPM_GENERATED_VALUE)");
  CLOISTER_TRY(a.type, be16(r, "TPMS_ATTEST type"));
  if (a.type != kStAttestQuote)
    return Error("TPMS_ATTEST type is " + hex_number(a.type) + ", expected " +
                 hex_number(kStAttestQuote) + " (TPM_ST_ATTEST_QUOTE)");
  CLOISTER_TRY(a.qualified_signer, tpm2b(r, kMaxName, "qualifiedSigner"));
  CLOISTER_TRY(a.extra_data, tpm2b(r, kMaxData, "extraData"));
  CLOISTER_TRY(a.clock, be64(r, "clockInfo.clock"));
  CLOISTER_TRY(a.reset_count, be32(r, "clockInfo.resetCount"));
  CLOISTER_TRY(a.restart_count, be32(r, "clockInfo.restartCount"));
  CLOISTER_TRY(std::uint8_t safe, r.u8("clockInfo.safe"));
  if (safe > 1) return Error("clockInfo.safe is " + std::to_string(safe) + ", expected 0 or 1");
  a.safe = safe == 1;
  CLOISTER_TRY(a.firmware_version, be64(r, "firmwareVersion"));
  CLOISTER_TRY(std::uint32_t count, be32(r, "TPML_PCR_SELECTION count"));
  if (count > kMaxSelections)
    return Error("TPML_PCR_SELECTION count " + std::to_string(count) + " exceeds " +
                 std::to_string(kMaxSelections));
  for (std::uint32_t i = 0; i < count; ++i) {
    PcrSelection s;
    CLOISTER_TRY(s.hash, be16(r, "TPMS_PCR_SELECTION hash"));
    CLOISTER_TRY(std::uint8_t size, r.u8("TPMS_PCR_SELECTION sizeofSelect"));
    if (size > kMaxSelect)
      return Error("TPMS_PCR_SELECTION sizeofSelect " + std::to_string(size) + " exceeds " +
                   std::to_string(kMaxSelect));
    CLOISTER_TRY(ByteView bitmap, r.bytes(size, "TPMS_PCR_SELECTION pcrSelect"));
    s.bitmap.assign(bitmap.begin(), bitmap.end());
    a.pcr_select.push_back(std::move(s));
  }
  CLOISTER_TRY(a.pcr_digest, tpm2b(r, kMaxDigest, "pcrDigest"));
  if (!r.at_end())
    return Error("TPMS_ATTEST: " + std::to_string(r.remaining()) + " bytes after pcrDigest");
  return a;
}

}  // namespace cloister::attestation::tpm
