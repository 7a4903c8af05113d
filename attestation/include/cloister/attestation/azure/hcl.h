// The HCL attestation report of an Azure confidential VM: what Microsoft's paravisor (the HCL)
// hands the guest's vTPM, with the hardware report (an SEV-SNP ATTESTATION_REPORT or a TDX
// TDREPORT) whose REPORT_DATA binds the runtime data that follows it: a JSON document carrying
// the vTPM's attestation key, the VM configuration and the guest's user data. Layout from
// az-cvm-vtpm hcl/mod.rs (AttestationReport, IgvmRequestData), little-endian; research and the
// facts it was checked against: shared/vectors/azure/MANIFEST.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/x509.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::azure {

// The header's signature, "HCLA" little-endian.
inline constexpr std::uint32_t kHclSignature = 0x414c4348;
inline constexpr std::size_t kHclHeaderSize = 0x20;
// The hardware report area: max(SNP report 1184, TDREPORT 1024).
inline constexpr std::size_t kHwReportOffset = 0x20;
inline constexpr std::size_t kHwReportAreaSize = 1184;
// IGVM_REQUEST_DATA: data_size, version, report_type, report_data_hash_type,
// variable_data_size (5 × u32).
inline constexpr std::size_t kRequestDataOffset = 0x4C0;
inline constexpr std::size_t kRequestDataSize = 20;
inline constexpr std::size_t kRuntimeDataOffset = 0x4D4;

// IGVM_REPORT_TYPE.
enum class HclReportType : std::uint32_t { kSnp = 2, kTdx = 4 };
// IGVM_REPORT_DATA_HASH_TYPE: only SHA-256 is produced (and supported by az-cvm-vtpm).
inline constexpr std::uint32_t kHashTypeSha256 = 1;

struct HclReport {
  std::uint32_t version = 0;  // header version, 1 or 2
  std::uint32_t report_size = 0;
  std::uint32_t request_type = 0;
  std::uint32_t status = 0;
  HclReportType report_type = HclReportType::kSnp;
  std::uint32_t report_data_hash_type = 0;
  // The hardware report: the 1184-byte SNP ATTESTATION_REPORT, or the 1024-byte TDREPORT.
  Bytes hw_report;
  // The runtime data exactly as stored (its SHA-256 is what REPORT_DATA binds).
  Bytes runtime_data;
};

// Parses an HCL report. Rejected, naming the field and what was expected and found: a
// signature other than "HCLA", a header version other than 1 or 2, request type other than 2,
// a non-zero status or reserved word, an IGVM request version other than 1, a report type
// other than SNP (2) or TDX (4), a report-data hash type other than SHA-256 (1), a data_size
// other than 20 + variable_data_size, a report_size other than 0x20 + 1184 + data_size, and
// runtime data reaching past the end. Bytes after the runtime data are not covered by any
// signature and are ignored.
Result<HclReport> parse_hcl_report(ByteView bytes);

// Whether `bytes` starts like an HCL report (the "HCLA" signature).
bool looks_like_hcl_report(ByteView bytes);

// A JSON Web Key of the runtime data (RFC 7517), RSA only.
struct RuntimeDataKey {
  std::string kid;  // "HCLAkPub" (attestation key), "HCLEkPub" (endorsement key)
  std::vector<std::string> key_ops;
  Bytes n;  // modulus, big-endian
  Bytes e;  // exponent, big-endian
};

// The vm-configuration object; members Azure does not always send are optional.
struct VmConfiguration {
  std::optional<bool> console_enabled;              // "console-enabled"
  std::optional<bool> secure_boot;                  // "secure-boot"
  std::optional<bool> tpm_enabled;                  // "tpm-enabled"
  std::optional<bool> tpm_persisted;                // "tpm-persisted"
  std::optional<std::string> vm_unique_id;          // "vmUniqueId"
  std::optional<std::string> root_cert_thumbprint;  // "root-cert-thumbprint"
  std::optional<std::int64_t> current_time;         // "current-time" (older reports)
};

struct RuntimeData {
  std::vector<RuntimeDataKey> keys;
  VmConfiguration vm_configuration;
  std::optional<Bytes> user_data;  // "user-data": 64 bytes, absent in older reports

  // The key with this kid, or nullptr.
  const RuntimeDataKey* key(std::string_view kid) const;
};

// Parses the runtime data: a JSON object (duplicate keys refused) with "keys" (an array of RSA
// JWKs with base64url "n" and "e", each kid once), "vm-configuration" (an object whose known
// members must have their types) and optionally "user-data" (128 hex digits). Other members
// are ignored: the document is Microsoft's and grows.
Result<RuntimeData> parse_runtime_data(ByteView json);

// The vTPM attestation key ("HCLAkPub") as a public key.
Result<PublicKey> attestation_key(const RuntimeData& runtime_data);

}  // namespace cloister::attestation::azure
