// Verification of SEV-SNP evidence: the report's format, signature, certificate chain to AMD's
// pinned root, revocation, and the binding between the VCEK/VLEK and the report. Appraisal
// against a policy (measurement, debug, minimum TCB, …) is policies/'s job; it runs on the
// SnpVerification this produces.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/snp/certs.h"
#include "cloister/attestation/snp/kds.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/verdict.h"
#include "cloister/attestation/x509.h"

namespace cloister::attestation::snp {

// What arrived with (or for) one report. Certificates may be in any order and mix roles (ARK,
// ASK, ASVK, VCEK, VLEK); they are sorted by subject. Unrelated certificates are ignored.
struct SnpEvidence {
  Bytes report;
  std::vector<Sourced<Certificate>> certificates;
  std::vector<Sourced<Crl>> crls;
};

struct SnpVerifyOptions {
  UnixTime time = 0;               // verification time (certificate and CRL validity)
  std::optional<Product> product;  // for v2 reports, which carry no CPUID fields
  bool require_crl = false;        // no CRL for the chain is a failure, not a skip
  bool allow_stale_crl = false;    // a CRL past its nextUpdate passes (with a note)
};

struct SnpVerification {
  std::optional<SnpReport> report;  // absent when the bytes are not a report at all
  std::optional<Product> product;
  std::optional<Certificate> anchor;  // the trusted ARK the chain was checked against
  std::optional<Certificate> vek;
  std::optional<VekKind> vek_kind;
  std::optional<VekExtensions> vek_extensions;
  std::optional<std::string> vcek_url;  // where KDS serves this report's VCEK, when derivable
  Checks checks;
};

struct SnpVerifierConfig {
  // Supplies certificates and CRLs the evidence lacks (cache, then KDS when online); without it
  // only the evidence and the trusted CAs' own certificates are used.
  std::shared_ptr<KdsClient> kds;
  // The CAs whose ARK is trusted, one per product. Empty means AMD's, as built into the library
  // (builtin_amd_ca()). Anything else (a test hierarchy, a simulated secure processor's root)
  // must be configured explicitly.
  std::vector<AmdCa> trusted_cas;
  // Self-signed ARKs (subject CN ARK-<product>) trusted beside those CAs, such as a simulated
  // secure processor's. The intermediate (ASK/ASVK) must come with the evidence. A chain is
  // checked against the ARK it presents when that is one of these (or one its intermediate's
  // signature verifies with), else against the CA above.
  std::vector<Certificate> trusted_arks;
};

// Thread-safe. Results of chain checks (the RSA signatures and the VEK's decoded extensions and
// key) are cached per (ARK, intermediate, VEK) so that verifying many reports from the same chip
// costs one ECDSA verification each; validity against the verification time is re-checked every
// time.
class SnpVerifier {
 public:
  explicit SnpVerifier(SnpVerifierConfig config = {});

  SnpVerification verify(const SnpEvidence& evidence, const SnpVerifyOptions& options) const;

 private:
  struct ChainResult {
    std::vector<Check> checks;
    std::optional<VekExtensions> extensions;
    std::string extensions_error;
    std::optional<PublicKey> vek_key;
  };
  std::shared_ptr<const ChainResult> chain_result(const Certificate& anchor, const Certificate& ark,
                                                  const Certificate& ica, const Certificate& vek,
                                                  Product product, VekKind kind) const;

  // The trusted ARK and the intermediate for `kind` (nullptr: it must come with the evidence):
  // one of the trusted ARKs the presented chain leads to, else the configured CAs, else the
  // built-in ones.
  struct TrustedCerts {
    const Certificate* ark;
    const Certificate* ica;
  };
  std::optional<TrustedCerts> trusted_certs(Product product, VekKind kind,
                                            const Certificate* presented_ark,
                                            const Certificate* presented_ica) const;

  std::shared_ptr<KdsClient> kds_;
  std::vector<AmdCa> trusted_cas_;
  std::vector<Certificate> trusted_arks_;
  mutable std::mutex mutex_;  // guards cache_; never held across a KDS fetch
  mutable std::map<std::string, std::shared_ptr<const ChainResult>> cache_;
};

// "snp.crl" (every CRL naming `product`'s ARK as issuer is signed by the pinned ARK with
// RSASSA-PSS and issued before `time`, and the newest is current at `time`) and
// "snp.revocation" (neither the intermediate's nor the VEK's serial is listed in any of them).
// Without a CRL both are skipped, or fail when options.require_crl.
void check_revocation(const std::vector<Sourced<Crl>>& crls, const Certificate& anchor,
                      const Certificate& ica, const Certificate& vek, Product product,
                      const SnpVerifyOptions& options, Checks& out);

// The report's ECDSA P-384 signature (R and S little-endian) as DER SEQUENCE{r, s}.
Bytes report_signature_der(const SnpReport& report);

}  // namespace cloister::attestation::snp
