// Verification of what Azure vTPM evidence adds to the hardware report: the runtime data the
// report binds, the vTPM quote signed by the attestation key that runtime data carries, the PCR
// values the quote commits to, and a TCG event log replayed into those PCRs. The hardware report
// itself (the SEV-SNP report or the TD quote) is verified by snp/verify.h or tdx/verify.h; the
// caller passes its REPORT_DATA in. Appraisal (PCR values, VM configuration, user data) is
// policies/'s job.
//
// Checks appended, in order (each names what it expected and found):
//   azure.runtime_data.format, azure.runtime_data.binding,
//   azure.tpm.quote.format, azure.tpm.quote.signature, azure.tpm.quote.nonce,
//   azure.tpm.pcr_digest, azure.runtime_data.user_data (v2 evidence with a nonce),
//   and with an event log: azure.eventlog.format, azure.eventlog.pcr<N> per PCR it extends.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloister/attestation/azure/evidence.h"
#include "cloister/attestation/azure/hcl.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/attestation/tdx/tdreport.h"
#include "cloister/attestation/tpm/attest.h"
#include "cloister/attestation/tpm/event_log.h"
#include "cloister/attestation/verdict.h"

namespace cloister::attestation::azure {

struct VtpmVerifyOptions {
  // The nonce the relying party expects in the quote's extraData; unset: freshness is not
  // checked (azure.tpm.quote.nonce is skipped).
  std::optional<Bytes> nonce;
  // Trustee evidence v2 also puts the nonce, zero-padded to 64 bytes, in the runtime data's
  // user-data: checked when this is set and a nonce is given.
  bool user_data_carries_nonce = false;
  // A TCG event log to replay into the SHA-256 PCRs.
  std::optional<Bytes> event_log;
};

struct VtpmVerification {
  std::optional<RuntimeData> runtime_data;
  std::optional<tpm::TpmsAttest> attest;
  // The SHA-256 PCR values the evidence carries, by index, in selection order; `pcrs_verified`
  // when the quote's pcrDigest covers exactly these values and the quote's signature verified.
  std::vector<std::pair<unsigned, Bytes>> pcrs;
  bool pcrs_verified = false;
  std::optional<tpm::TpmEventLog> event_log;
  std::optional<tpm::PcrReplay> replay;

  // The PCR's value when the evidence carries it, else nullptr.
  const Bytes* pcr(unsigned index) const;
};

// Runs the checks above. `report_data` is the hardware report's 64-byte REPORT_DATA (SEV-SNP
// report offset 0x50, or the TD quote's); `report_data_source` names it in the binding check.
VtpmVerification verify_vtpm(const HclReport& hcl, ByteView report_data,
                             const std::string& report_data_source,
                             const std::optional<VtpmQuote>& quote,
                             const VtpmVerifyOptions& options, Checks& checks);

// "azure.td_report.match": the TD quote's body is the HCL report's TDREPORT (TEE_TCB_SVN,
// MRSEAM, MRSIGNERSEAM, SEAM_ATTRIBUTES, TD_ATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER,
// MROWNERCONFIG, RTMR0-3, REPORT_DATA), so the runtime data the TDREPORT binds is the one the
// quote was signed over.
void check_td_report_match(const tdx::TdReportStruct& td_report, const tdx::TdReport& quoted,
                           Checks& checks);

}  // namespace cloister::attestation::azure
