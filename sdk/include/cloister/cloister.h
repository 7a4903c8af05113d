/* Cloister C ABI: verify attestation evidence from any language with a C FFI.
 *
 * Link with -lcloister (libcloister.so). Strings are UTF-8 and NUL-terminated. Every string
 * this library returns is owned by the caller and released with cloister_free(), except
 * cloister_version()'s, which is static.
 * Thread-safety: a cloister_verifier may be used from several threads at once.
 */
#ifndef CLOISTER_CLOISTER_H
#define CLOISTER_CLOISTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes (also verify-report's exit codes). */
#define CLOISTER_PASS 0   /* every check passed */
#define CLOISTER_FAIL 1   /* verification or policy failed; the verdict says which check */
#define CLOISTER_EINVAL 2 /* unusable input: bad options, certificate, CRL, policy or product */

typedef struct cloister_verifier cloister_verifier;

typedef struct {
  const uint8_t* data;
  size_t len;
} cloister_bytes;

typedef struct {
  /* sizeof(cloister_verify_request) as the caller compiled it: lets later versions add fields
   * compatibly. A request of CLOISTER_VERIFY_REQUEST_V1_SIZE (a caller built against 0.1,
   * which knew the fields up to `time`) is accepted; the newer fields then read as unset. */
  size_t struct_size;
  /* SEV-SNP report (1184 bytes), optionally followed by its certificate table; a TDX quote; or
   * Azure vTPM evidence (Trustee's az-snp-vtpm / az-tdx-vtpm JSON, or an HCL report). */
  cloister_bytes evidence;
  /* Certificate files (DER or PEM bundles), any roles. For TDX: issuer chains. */
  const cloister_bytes* certificates;
  size_t certificate_count;
  /* SNP: optional extended-report certificate table ({NULL, 0}: none). */
  cloister_bytes cert_table;
  /* CRL files (DER or PEM). For TDX: the Root CA and PCK CRLs. */
  const cloister_bytes* crls;
  size_t crl_count;
  /* Appraisal policy JSON (docs/policy.md); NULL: secure defaults. */
  const char* policy_json;
  /* SNP: "Milan", "Genoa", "Turin", … for reports without CPUID fields; NULL: from the
   * evidence. */
  const char* product;
  /* Verification time, seconds since the Unix epoch; 0: now. */
  int64_t time;
  /* ---- Added after 0.1 (TDX); read only when struct_size covers them. ---- */
  /* "snp", "tdx", "az-snp-vtpm" or "az-tdx-vtpm"; NULL: detected from the evidence. */
  const char* tee;
  /* TDX collateral files: PCS TCB Info / QE Identity responses, collateral bundles, PEM issuer
   * chains, CRLs; each recognised by content. */
  const cloister_bytes* collateral;
  size_t collateral_count;
  /* TDX: the CC event log or dstack's JSON log to replay into RTMR0-3; Azure: the TCG event log
   * to replay into PCRs ({NULL, 0}: none). */
  cloister_bytes event_log;
  /* ---- Added with Azure vTPM evidence; read only when struct_size covers them. ---- */
  /* Azure, with a bare HCL report: the vTPM quote in one part (JSON or bincode) or two
   * (TPMS_ATTEST and signature). */
  const cloister_bytes* tpm_quote;
  size_t tpm_quote_count;
  /* Azure: the nonce the vTPM quote must carry ({NULL, 0}: not checked; a non-NULL pointer
   * with length 0 is CLOISTER_EINVAL). */
  cloister_bytes nonce;
} cloister_verify_request;

/* The size of the request as 0.1 defined it (fields up to and including `time`). */
#define CLOISTER_VERIFY_REQUEST_V1_SIZE (offsetof(cloister_verify_request, time) + sizeof(int64_t))

/* Creates a verifier. options_json may be NULL or
 *   {"cache_dir": "/var/cache/cloister", "online": false, "kds_url": "https://kdsintf.amd.com",
 *    "pcs_url": "https://api.trustedservices.intel.com"}.
 * Returns CLOISTER_PASS and *out, or CLOISTER_EINVAL and (if error is not NULL) a message. */
int cloister_verifier_new(const char* options_json, cloister_verifier** out, char** error);

void cloister_verifier_free(cloister_verifier* verifier);

/* Verifies. On CLOISTER_PASS or CLOISTER_FAIL, *verdict_json receives
 *   {"verdict": "pass"|"fail", "tee": "snp"|"tdx"|"az-snp-vtpm"|"az-tdx-vtpm",
 *    "simulated": bool, "trust_anchor": {"subject", "fingerprint", "simulated"} or null,
 *    "checks": [...], "report": {...}} (plus "azure": {...} for Azure vTPM evidence);
 * on CLOISTER_EINVAL it receives {"error": "..."}. */
int cloister_verify(const cloister_verifier* verifier, const cloister_verify_request* request,
                    char** verdict_json);

void cloister_free(void* p);

/* "0.1.0": static storage, not to be freed. */
const char* cloister_version(void);

#ifdef __cplusplus
}
#endif

#endif /* CLOISTER_CLOISTER_H */
