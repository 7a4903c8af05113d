// The TEE evidence forms KBS clients send in Attestation.tee-evidence.primary_evidence
// (research/service.md §a.6), converted to and from the bytes the verifier reads.
//
// SEV-SNP: {"attestation_report": <virtee/sev AttestationReport in serde form>,
//           "cert_chain": [{"cert_type": "VCEK", "data": [bytes]}, …] | null}
// The report is not bytes on the wire: every field is a JSON member, byte strings are arrays
// of numbers, TCB versions are {"fmc","bootloader","tee","snp","microcode"} objects, firmware
// versions {"major","minor","build"}, the signature {"r": [72], "s": [72]} little-endian.
//
// TDX: {"cc_eventlog": "<base64 CCEL>" | null, "quote": "<base64 quote>"} (standard base64).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::service::evidence {

// One virtee/sev CertTableEntry. `type` is the serde spelling of its CertType: "ARK", "ASK",
// "VCEK", "VLEK", "CRL", "Empty", or "OTHER" with the entry's GUID in `other_guid`.
struct SnpCertificate {
  std::string type;
  std::optional<std::string> other_guid;
  Bytes data;
  bool operator==(const SnpCertificate&) const = default;
};

struct SnpEvidence {
  Bytes report;  // the 1184-byte ATTESTATION_REPORT
  std::optional<std::vector<SnpCertificate>> cert_chain;
};

// The serde JSON form → report bytes. Every member is checked for presence, JSON type and
// range (arrays of exactly the field's length, numbers within the field's width); the optional
// members follow the report version as the ABI does (cpuid_* for versions 3-5, the mitigation
// vectors for version 5; null or absent otherwise). The TCB layout follows the CPUID product
// when the report has one, else the presence of "fmc" (Turin and later). Errors name the member
// path, e.g. "attestation_report.current_tcb.snp: expected an integer 0..255, found 256".
Result<SnpEvidence> parse_snp_evidence(const nlohmann::json& primary_evidence);

// Report bytes → the serde JSON form, so that parse_snp_evidence(snp_evidence_to_json(e))
// reproduces e. The mitigation vectors are emitted for version 5 only and the CPUID members
// for every version (null before version 3), as the virtee/sev versions Trustee's clients use
// do. Fails when the report is not 1184 bytes or its TCB layout cannot be decided.
Result<nlohmann::json> snp_evidence_to_json(const SnpEvidence& evidence);

struct TdxEvidence {
  Bytes quote;
  std::optional<Bytes> cc_eventlog;  // CCEL (and AAEL) bytes, when the client sent them
};

Result<TdxEvidence> parse_tdx_evidence(const nlohmann::json& primary_evidence);
nlohmann::json to_json(const TdxEvidence& evidence);

}  // namespace cloister::service::evidence
