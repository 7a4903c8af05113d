// Building test certificates and CRLs (for fake vendor hierarchies shaped like AMD's and
// Intel's). Test-only; fails the calling test on OpenSSL errors.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cloister/attestation/x509.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace cloister::testing {

// Ordered name attributes, e.g. {{"CN", "ARK-Milan"}, {"O", "Advanced Micro Devices"}}.
using X509Name = std::vector<std::pair<std::string, std::string>>;

enum class SignatureScheme {
  kRsaPssSha384,  // RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48 (AMD)
  kEcdsaSha256,   // ECDSA with SHA-256 (Intel)
};

struct CertificateSpec {
  X509Name subject;
  X509Name issuer;
  long serial = 0;
  UnixTime not_before = 0;
  UnixTime not_after = 0;
  EVP_PKEY* subject_key = nullptr;
  EVP_PKEY* issuer_key = nullptr;
  SignatureScheme scheme = SignatureScheme::kEcdsaSha256;
  // Non-critical extensions: dotted OID and the extnValue contents.
  std::vector<std::pair<std::string, Bytes>> extensions;
};

attestation::Certificate make_test_certificate(const CertificateSpec& spec);

struct CrlSpec {
  X509Name issuer;
  EVP_PKEY* key = nullptr;
  SignatureScheme scheme = SignatureScheme::kEcdsaSha256;
  std::vector<Bytes> revoked;  // serials (big-endian magnitudes), revoked a day before this_update
  UnixTime this_update = 0;
  UnixTime next_update = 0;
};

attestation::Crl make_test_crl(const CrlSpec& spec);

}  // namespace cloister::testing
