// The containers Azure vTPM evidence arrives in: Trustee's evidence JSON (az-snp-vtpm and
// az-tdx-vtpm, versions 0, 1 and 2; trustee deps/verifier/src/az_*_vtpm/compat.rs) or a bare
// HCL report, and the vTPM quote's encodings (Trustee's JSON, az-cvm-vtpm's bincode, or the
// TPMS_ATTEST and its signature as two blobs). Only the containers: what is inside is checked by
// azure/verify.h.
#pragma once

#include <optional>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"

namespace cloister::attestation::azure {

// One vTPM quote file (TPMS_ATTEST, its signature, or the JSON form carrying both): a TPM2 quote
// over 24 PCRs is a few hundred bytes.
inline constexpr FileLimit kTpmQuoteFileLimit{64u << 10, "a vTPM quote or its signature can be"};

// A vTPM quote: the TPMS_ATTEST message, the AK's signature over it, and the PCR values it
// commits to (in selection order; empty when the evidence does not carry them).
struct VtpmQuote {
  Bytes message;
  Bytes signature;
  std::vector<Bytes> pcrs;
};

struct AzureEvidence {
  // Trustee's evidence version (0: no "version" member); unset for a bare HCL report.
  std::optional<unsigned> version;
  Bytes hcl_report;
  std::optional<VtpmQuote> tpm_quote;
  std::optional<Bytes> td_quote;  // TDX: the TD quote the HCL report's TDREPORT became
  std::optional<Bytes> vcek;      // SEV-SNP: the VCEK the evidence carries (PEM or DER)
};

// Whether `bytes` is Azure vTPM evidence by content: an HCL report ("HCLA"), or a JSON object
// with an HCL report ("hcl_report", or v0 SEV-SNP "report") and a vTPM quote ("tpm_quote", or
// v0 SEV-SNP "quote").
bool looks_like_azure_evidence(ByteView bytes);

// Detection and parsing in one pass over the bytes: unset when `bytes` is not Azure vTPM
// evidence by content (looks_like_azure_evidence()), else what parse_azure_evidence() gives.
std::optional<Result<AzureEvidence>> parse_if_azure_evidence(ByteView bytes);

// Parses either container. Trustee's JSON: "version" absent (0), 1 or 2; binary members as
// arrays of byte values (v0) or base64url strings (v1, v2; hex for the TPM quote's members);
// the VCEK as PEM text (v0) or base64url DER. Unknown members are refused, naming them.
Result<AzureEvidence> parse_azure_evidence(ByteView bytes);

// A vTPM quote given in one part (Trustee's {"signature", "message", "pcrs"} JSON, or
// az-cvm-vtpm's bincode `vtpm::Quote`: u64 LE length, signature, u64 LE length, message, u64 LE
// count, count × 32-byte PCRs, consumed exactly) or two (the TPMS_ATTEST message, recognised by
// its magic, and the signature, in either order; no PCR values).
Result<VtpmQuote> parse_vtpm_quote(const std::vector<ByteView>& parts);

}  // namespace cloister::attestation::azure
