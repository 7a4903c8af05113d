// Issuing X.509 certificates and CRLs for the simulated vendor hierarchies (AMD-shaped:
// RSASSA-PSS SHA-384; Intel-shaped: ECDSA SHA-256). The project's one certificate builder.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloister/attestation/sim/keys.h"
#include "cloister/attestation/x509.h"

namespace cloister::attestation::sim {

// Ordered name attributes, e.g. {{"CN", "ARK-Milan"}, {"O", "Advanced Micro Devices"}}.
using X509Name = std::vector<std::pair<std::string, std::string>>;

enum class SignatureScheme {
  kRsaPssSha384,  // RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48 (AMD)
  kEcdsaSha256,   // ECDSA with SHA-256 (Intel)
};

struct CertificateSpec {
  X509Name subject;
  std::uint64_t serial = 0;
  UnixTime not_before = 0;
  UnixTime not_after = 0;
  // A CA: basicConstraints CA:TRUE (critical; with `path_length` when set), keyUsage
  // keyCertSign and cRLSign (critical), and subject/authority key identifiers.
  bool ca = false;
  std::optional<int> path_length;
  std::vector<std::string> crl_distribution_points;  // URIs
  // Further non-critical extensions, in this order: dotted OID and the extnValue contents.
  std::vector<std::pair<std::string, Bytes>> extensions;
};

// A v3 certificate for `subject_key`, issued by `issuer` (whose subject becomes the issuer name)
// and signed with `issuer_key`; self-issued when `issuer` is nullptr.
Result<Certificate> issue_certificate(const CertificateSpec& spec, const PublicKey& subject_key,
                                      const Certificate* issuer, const PrivateKey& issuer_key,
                                      SignatureScheme scheme);

struct CrlSpec {
  std::vector<Bytes> revoked;  // serials (big-endian magnitudes), revoked a day before this_update
  UnixTime this_update = 0;
  UnixTime next_update = 0;
  long crl_number = 1;
};

// A v2 CRL naming `issuer`'s subject as its issuer, signed with `key`.
Result<Crl> issue_crl(const CrlSpec& spec, const Certificate& issuer, const PrivateKey& key,
                      SignatureScheme scheme);

// A certificate as PEM text.
std::string certificate_pem(const Certificate& cert);

}  // namespace cloister::attestation::sim
