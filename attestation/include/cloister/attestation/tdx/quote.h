// The Intel TDX DCAP quote (versions 4 and 5, TD report body 1.0 and 1.5) as a typed value.
//
// decode_tdx_quote() is the one parser of quote bytes. Every length is checked before it is
// read, and it fails (naming the field, its offset and what was missing) only when the bytes
// cannot be laid out as a quote: truncation, an unknown version or body type, a body or
// certification-data size that does not fit. Violations that leave the layout intact (an
// attestation key type other than ECDSA P-256, a TEE type that is not TDX, certification data
// that does not embed the PCK chain, unused bytes inside the signature data) are recorded in
// TdxQuote::format_problems, so a verifier can still check (and report) the signatures.
// parse_tdx_quote() is the strict form. Bytes after the signature data are not signed and not
// part of the quote; they are counted in trailing_bytes. encode_tdx_quote() is the inverse: for
// every quote that decodes without format problems, encode_tdx_quote(decode_tdx_quote(bytes))
// reproduces the bytes up to the end of the signature data (TdxQuote::raw).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/tdx/abi.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::tdx {

using Bytes48 = std::array<std::uint8_t, 48>;

struct QuoteHeader {
  std::uint16_t version = 0;
  std::uint16_t att_key_type = 0;
  std::uint32_t tee_type = 0;
  std::array<std::uint8_t, 4> reserved{};  // bytes 8..11: zero in every real quote
  std::array<std::uint8_t, 16> qe_vendor_id{};
  std::array<std::uint8_t, 20> user_data{};
  bool operator==(const QuoteHeader&) const = default;
};

// The TD report body. Byte arrays keep the quote's byte order; td_attributes and xfam are the
// little-endian u64 values.
struct TdReport {
  std::array<std::uint8_t, 16> tee_tcb_svn{};
  Bytes48 mr_seam{};
  Bytes48 mr_signer_seam{};
  std::array<std::uint8_t, 8> seam_attributes{};
  std::uint64_t td_attributes = 0;
  std::uint64_t xfam = 0;
  Bytes48 mr_td{};
  Bytes48 mr_config_id{};
  Bytes48 mr_owner{};
  Bytes48 mr_owner_config{};
  std::array<Bytes48, 4> rtmr{};
  std::array<std::uint8_t, 64> report_data{};
  // TD report 1.5 only.
  std::optional<std::array<std::uint8_t, 16>> tee_tcb_svn2;
  std::optional<Bytes48> mr_service_td;

  bool debug() const { return td_attributes & (1ull << td_attribute_bit::kDebug); }
  bool operator==(const TdReport&) const = default;
};

// The Quoting Enclave's SGX REPORT body, which the PCK key signs. `raw` holds all 384 bytes,
// including the fields this library does not decode (ISVEXTPRODID, CONFIGID, CONFIGSVN,
// ISVFAMILYID).
struct QeReport {
  std::array<std::uint8_t, kQeReportSize> raw{};
  std::array<std::uint8_t, 16> cpu_svn{};
  std::uint32_t misc_select = 0;
  std::array<std::uint8_t, 16> attributes{};
  std::array<std::uint8_t, 32> mr_enclave{};
  std::array<std::uint8_t, 32> mr_signer{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::array<std::uint8_t, 64> report_data{};
  bool operator==(const QeReport&) const = default;
};

struct TdxQuote {
  Bytes raw;  // exactly the quote: header through the end of the signature data

  QuoteHeader header;
  std::optional<std::uint16_t> body_type;  // v5 only
  std::uint32_t body_size = 0;             // kTdReport10Size for v4
  TdReport td_report;

  std::uint32_t signature_data_len = 0;
  std::array<std::uint8_t, kEcdsaSignatureSize> signature{};        // over signed_bytes()
  std::array<std::uint8_t, kEcdsaPublicKeySize> attestation_key{};  // raw x||y
  std::uint16_t cert_data_type = 0;                                 // outer: 6
  QeReport qe_report;
  std::array<std::uint8_t, kEcdsaSignatureSize> qe_report_signature{};  // by the PCK key
  Bytes qe_auth_data;
  std::uint16_t pck_cert_data_type = 0;  // inner: 5 = PEM PCK chain
  Bytes pck_cert_data;                   // the inner certification data as carried

  std::size_t signed_size = 0;     // header (+ v5 descriptor) + body
  std::size_t trailing_bytes = 0;  // bytes after the signature data in the input

  // Every format violation found while decoding, each naming the field. Empty when well formed.
  std::vector<std::string> format_problems;

  // The bytes the quote signature covers: [0, 48 + 584) for v4, [0, 54 + body_size) for v5.
  ByteView signed_bytes() const { return ByteView(raw).first(signed_size); }
};

// True when the bytes start like a TDX quote (version 4 or 5 with TEE type TDX, or ECDSA
// attestation key type), as opposed to an SEV-SNP report, whose first u32 is its version.
bool looks_like_tdx_quote(ByteView bytes);

// See the file comment.
Result<TdxQuote> decode_tdx_quote(ByteView bytes);

// decode_tdx_quote() that also fails with the first format problem.
Result<TdxQuote> parse_tdx_quote(ByteView bytes);

// The 384 bytes of a QE report: `raw` with the decoded fields written over it, so the fields
// this library does not decode keep raw's bytes.
std::array<std::uint8_t, kQeReportSize> encode_qe_report(const QeReport& report);

// The quote bytes (header through the end of the signature data) written from the typed fields:
// the header, the v5 body type (the body size follows from it), the TD report, the signature
// data with the QE report as encode_qe_report() writes it. Every size field is computed; `raw`,
// `body_size`, `signature_data_len`, `signed_size`, `trailing_bytes` and `format_problems` are
// not read. Fails, naming the field, for values no quote can hold: a version other than 4 or 5,
// a v4 quote for another TEE or with a body type, a v5 quote without a TD report body type, TD
// report 1.5 fields that do not match the body type, or QE auth data over 65535 bytes.
Result<Bytes> encode_tdx_quote(const TdxQuote& quote);

}  // namespace cloister::attestation::tdx
