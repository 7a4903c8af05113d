// The public C++ API tenants and CI pipelines link: verify evidence bytes, certificates and a
// policy into a verdict whose checks say what was expected and found. verify-report is a thin
// main over this; the C ABI (cloister/cloister.h) wraps it.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/snp/verify.h"
#include "cloister/attestation/tdx/verify.h"
#include "cloister/attestation/verdict.h"
#include "cloister/common/bytes.h"
#include "cloister/common/file.h"
#include "cloister/common/time.h"
#include "cloister/policy/policy.h"

namespace cloister::sdk {

// Evidence (VerifyRequest::evidence), as a file or in memory: Verifier::verify() refuses more.
// A TDX quote is about 5 KiB with its PCK chain; Linux hands an SNP guest at most 16 KiB of
// certificate table.
inline constexpr FileLimit kEvidenceFileLimit{
    1u << 20,
    "an SEV-SNP report with its certificate table or a TDX quote can be (a report is 1184 bytes, "
    "a quote about 5 KiB)"};

struct VerifyRequest {
  // SEV-SNP: the 1184-byte report, optionally followed by the extended-report certificate table
  // (the layout go-sev-guest's tools read with -inform bin).
  // TDX: the quote (v4 or v5); bytes after its signature data are ignored.
  // Azure vTPM evidence: Trustee's az-snp-vtpm / az-tdx-vtpm evidence JSON (v0, v1, v2), or a
  // bare HCL report (with the vTPM quote in `tpm_quote`).
  Bytes evidence;
  // "snp", "tdx", "az-snp-vtpm" or "az-tdx-vtpm"; unset: detected from the evidence
  // (detect_tee()).
  std::optional<std::string> tee;
  // Certificate files' contents: DER, or PEM with one or more certificates. Any roles. For TDX
  // they join the collateral (issuer chains).
  std::vector<Bytes> certificates;
  // SNP only: a separate extended-report certificate table (GHCB GUID table).
  std::optional<Bytes> cert_table;
  // CRL files' contents, DER or PEM. For TDX they join the collateral (Root CA and PCK CRLs).
  std::vector<Bytes> crls;
  // TDX only: collateral files' contents, each recognised by content: Intel PCS TCB Info or QE
  // Identity responses, a collateral bundle JSON, PEM issuer chains, CRLs (see
  // attestation::tdx::add_collateral()).
  std::vector<Bytes> collateral;
  // TDX: the CC event log (CCEL log area) or dstack's JSON event log, to replay into RTMR0-3.
  // Azure vTPM evidence: the TCG event log (binary_bios_measurements), to replay into PCRs.
  std::optional<Bytes> event_log;
  // Azure vTPM evidence whose container has no vTPM quote (a bare HCL report): the quote as one
  // part (Trustee's JSON or az-cvm-vtpm's bincode) or two (TPMS_ATTEST and signature), see
  // attestation::azure::parse_vtpm_quote().
  std::vector<Bytes> tpm_quote;
  // Azure vTPM evidence: the nonce the vTPM quote must carry (its extraData; with Trustee's v2
  // evidence also the runtime data's user-data). Unset: freshness is not checked.
  std::optional<Bytes> nonce;
  policy::Policy policy;
  // Verification time for certificate, CRL and collateral validity; unset: now.
  std::optional<UnixTime> time;
  // SNP only: product name ("Milan", "Genoa", "Turin", …) for reports without CPUID fields.
  std::optional<std::string> product;
};

// What the evidence is, by content: "tdx" (a TDX quote), "az-snp-vtpm" / "az-tdx-vtpm" (Azure
// vTPM evidence, by the HCL report's report type), "snp" (a report whose version field is 2..5,
// however short), or nullopt for anything else.
std::optional<std::string> detect_tee(ByteView evidence);

// The message for evidence detect_tee() does not recognise.
inline constexpr const char* kUnrecognisedEvidence =
    "not a SEV-SNP report, TDX quote or Azure vTPM evidence";

struct VerifierOptions {
  // Certificates, CRLs and collateral are looked up here, and what is fetched is stored here
  // (AMD KDS and Intel PCS layouts side by side, see docs/tenant.md).
  std::optional<std::filesystem::path> cache_dir;
  // Fetch missing VCEKs, CA chains and CRLs from AMD KDS, and missing TDX collateral from
  // Intel PCS. Off: nothing leaves the machine.
  bool online = false;
  std::string kds_url = attestation::snp::kKdsBaseUrl;
  // Intel PCS, or a PCCS serving the same API.
  std::string pcs_url = attestation::tdx::kPcsBaseUrl;
  // Trusted AMD CAs; empty: the AMD roots built into the library.
  std::vector<attestation::snp::AmdCa> trusted_cas;
  // Self-signed roots trusted beside the vendors' pinned ones, such as a simulated secure
  // processor's (docs/simulated-tee.md): an ARK-<product> certificate anchors SEV-SNP chains
  // (the intermediate comes with the evidence), any other anchors TDX PCK chains and collateral.
  // Never set by default; check_trust_root() says whether a certificate can be one.
  std::vector<attestation::Certificate> trust_roots;
};

// Ok when `root` can be a trust root: self-signed (its signature verifies with its own key).
Status check_trust_root(const attestation::Certificate& root);

// The root a verdict's certificate chain was checked against and found to end in.
struct TrustAnchor {
  std::string subject;      // RFC 2253 one-line form
  std::string fingerprint;  // SHA-256 of the DER, hex
  // The root is a simulated secure processor's (its subject OU is
  // attestation::kSimulatedOrganizationalUnit): the evidence proves nothing about hardware.
  bool simulated = false;
};

struct Verdict {
  std::string tee;  // "snp", "tdx", "az-snp-vtpm" or "az-tdx-vtpm"
  attestation::Checks checks;
  // Every field of the hardware report (hex strings); null when the evidence is not a report.
  nlohmann::json report;
  // Azure vTPM evidence: the HCL report, runtime data (VM configuration, user data, keys), the
  // vTPM quote, the PCR values and a replayed event log; null otherwise.
  nlohmann::json azure;
  // Set when the chain's root check passed.
  std::optional<TrustAnchor> trust_anchor;

  bool passed() const { return checks.passed(); }
  // {"verdict": "pass"|"fail", "tee", "simulated": bool,
  //  "trust_anchor": {"subject","fingerprint","simulated"} or null,
  //  "checks": [{"name","status","expected","found","detail"}], "report": {...}}, plus
  //  "azure": {...} for Azure vTPM evidence.
  nlohmann::json to_json() const;
  // One line per check, then the verdict; for a terminal, so control characters the evidence
  // carried are shown as \xNN (without_controls()), never sent raw.
  std::string to_text() const;
};

// Thread-safe; keeps a cache of verified certificate chains, so reuse one Verifier.
class Verifier {
 public:
  explicit Verifier(VerifierOptions options = {});
  ~Verifier();
  Verifier(Verifier&&) noexcept;
  Verifier& operator=(Verifier&&) noexcept;

  // A verdict for evidence up to kEvidenceFileLimit. Fails (no verdict) only when an input the
  // caller supplied is unusable: evidence beyond that limit, evidence detect_tee() does not
  // recognise (kUnrecognisedEvidence) when no TEE is named, a certificate, CRL or collateral file
  // that does not parse, an unknown product name or TEE, an input the evidence's TEE does not
  // take (a certificate table or product for a TDX quote, collateral or an event log for an SNP
  // report, a vTPM quote or nonce for anything but Azure vTPM evidence). A policy with any
  // section accepts only evidence it has a section for (check policy.tee: bare snp or tdx
  // evidence its snp or tdx section, and no azure section; Azure vTPM evidence its azure
  // section), and Azure vTPM evidence passes only when the snp or tdx section pins the
  // paravisor (policy.azure.paravisor). No policy at all: the secure defaults, nothing pinned.
  Result<Verdict> verify(const VerifyRequest& request) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::sdk
