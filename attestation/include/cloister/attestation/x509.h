// X.509 certificates, CRLs and public keys for evidence verification (OpenSSL underneath).
// Values are immutable and cheap to copy (shared ownership of the OpenSSL object).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"
#include "cloister/common/sha.h"
#include "cloister/common/time.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;
typedef struct X509_crl_st X509_CRL;

namespace cloister::attestation {

class PublicKey {
 public:
  static Result<PublicKey> from_spki_der(ByteView der);
  // An uncompressed P-256/P-384 point given as raw x||y (big-endian coordinates, no 0x04).
  static Result<PublicKey> from_ec_point(int curve_nid, ByteView xy);
  // An RSA key from its modulus and public exponent (big-endian magnitudes, as a JWK's "n" and
  // "e" carry them). Refuses moduli under 2048 or over 16384 bits and even exponents.
  static Result<PublicKey> from_rsa(ByteView modulus, ByteView exponent);

  Bytes spki_der() const;
  // The raw x||y of an EC key's point (the inverse of from_ec_point()); empty for other keys.
  Bytes ec_point() const;
  // Same key (algorithm, parameters and public value). Cheaper than comparing spki_der().
  bool equals(const PublicKey& other) const;
  // "EC P-384", "RSA 4096", …
  std::string describe() const;
  bool is_ec_curve(int curve_nid) const;
  bool is_rsa(int bits) const;

  // ECDSA over `message` hashed with `hash`; `der_signature` is SEQUENCE{r, s}.
  Status verify_ecdsa(HashAlgorithm hash, ByteView message, ByteView der_signature) const;
  // RSASSA-PKCS1-v1_5 over `message` hashed with `hash` (RFC 8017 §8.2).
  Status verify_rsa_pkcs1(HashAlgorithm hash, ByteView message, ByteView signature) const;

  EVP_PKEY* native() const { return key_.get(); }

 private:
  explicit PublicKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  friend class Certificate;
  std::shared_ptr<EVP_PKEY> key_;
};

// RSASSA-PSS parameters of a signature algorithm (RFC 4055).
struct RsaPssParams {
  std::string hash;       // "SHA384"
  std::string mgf1_hash;  // "SHA384"
  long salt_length = 0;
};

class Certificate {
 public:
  // Fails for anything but exactly one DER certificate, including certificates whose public key
  // cannot be decoded (so public_key() always holds a key).
  static Result<Certificate> from_der(ByteView der);

  const Bytes& der() const { return der_; }
  const Sha256Digest& fingerprint() const { return fingerprint_; }  // SHA-256 of the DER
  int version() const;                                              // 3 for X.509 v3
  std::string subject_cn() const;
  std::string issuer_cn() const;
  // A subject/issuer attribute by short name ("OU", "C", "L", "ST", "O", "CN"); empty if absent.
  std::string subject_attribute(std::string_view short_name) const;
  std::string issuer_attribute(std::string_view short_name) const;
  std::string subject_string() const;  // one-line RFC 2253 form, for messages
  // The serial as minimal big-endian magnitude bytes, and as "0x20002".
  Bytes serial() const;
  std::string serial_hex() const;
  UnixTime not_before() const;
  UnixTime not_after() const;
  // OpenSSL's long name of the signature algorithm, e.g. "rsassaPss", "ecdsa-with-SHA256".
  std::string signature_algorithm() const;
  // The RSASSA-PSS parameters when the certificate is signed with RSASSA-PSS.
  std::optional<RsaPssParams> rsa_pss_params() const;
  const PublicKey& public_key() const { return public_key_; }
  // Dotted OIDs of every extension, in certificate order (duplicates kept).
  std::vector<std::string> extension_oids() const;
  // The extnValue contents of the extension with this dotted OID.
  std::optional<Bytes> extension_value(std::string_view oid) const;
  // CRL distribution point URIs.
  std::vector<std::string> crl_distribution_points() const;

  // Checks this certificate's signature with the issuer's key.
  Status verify_signed_by(const PublicKey& issuer_key) const;
  // "valid 2022-09-24T00:55:28Z..2029-09-24T00:55:28Z" or why not at `time`.
  Status check_validity(UnixTime time) const;

  X509* native() const { return cert_.get(); }

 private:
  Certificate(std::shared_ptr<X509> cert, Bytes der, PublicKey key);
  std::shared_ptr<X509> cert_;
  Bytes der_;
  Sha256Digest fingerprint_{};
  PublicKey public_key_;
};

// A certificate file (DER, or PEM with one or more certificates): VCEK, ASK/ARK, Intel's chains.
inline constexpr FileLimit kCertificateFileLimit{
    1u << 20,
    "a certificate file can be (a certificate is 1-2 KiB, a PEM chain of three about 5 KiB)"};

// A CRL file (DER or PEM). The limit is what the HTTP client takes from KDS and PCS
// (HttpClientOptions::max_body_bytes), so a cached CRL always reads back.
inline constexpr FileLimit kCrlFileLimit{
    4u << 20, "a CRL can be (AMD's and Intel's CRLs are 1-2 KiB; 4 MiB is what cloister fetches)"};

// One or more certificates from PEM text (every CERTIFICATE block, other blocks ignored) or
// a single DER certificate. Fails when nothing parses, naming the block that did not.
Result<std::vector<Certificate>> parse_certificates(ByteView data);

struct RevokedCertificate {
  Bytes serial;  // big-endian magnitude
  UnixTime revocation_date = 0;
};

class Crl {
 public:
  // DER or PEM ("X509 CRL").
  static Result<Crl> parse(ByteView data);

  const Bytes& der() const { return der_; }
  std::string issuer_cn() const;
  std::string issuer_attribute(std::string_view short_name) const;
  UnixTime this_update() const;
  std::optional<UnixTime> next_update() const;
  std::optional<long> crl_number() const;
  std::string signature_algorithm() const;
  std::optional<RsaPssParams> rsa_pss_params() const;
  const std::vector<RevokedCertificate>& revoked() const { return revoked_; }
  // The entry for this serial (big-endian magnitude), if revoked.
  std::optional<RevokedCertificate> find_revoked(ByteView serial) const;

  Status verify_signed_by(const PublicKey& issuer_key) const;

 private:
  Crl(std::shared_ptr<X509_CRL> crl, Bytes der);
  std::shared_ptr<X509_CRL> crl_;
  Bytes der_;
  std::vector<RevokedCertificate> revoked_;
};

enum class ByteOrder { kBigEndian, kLittleEndian };

// An ECDSA signature given as two raw integers (Intel: big-endian; AMD: little-endian) as the
// DER SEQUENCE{r, s} verify_ecdsa() takes. Integers may carry leading (big-endian) or trailing
// (little-endian) zero bytes.
Bytes ecdsa_signature_der(ByteView r, ByteView s, ByteOrder order);

// The most recent OpenSSL error queue entry as text, and clears the queue.
std::string openssl_error();

}  // namespace cloister::attestation
