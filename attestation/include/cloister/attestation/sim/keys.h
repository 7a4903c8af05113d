// Private keys of the simulated secure processor (the vendor CAs, the VCEK, the PCK, the QE
// attestation key) and the random bytes it draws. OpenSSL underneath.
#pragma once

#include <memory>

#include "cloister/attestation/x509.h"
#include "cloister/common/bytes.h"
#include "cloister/common/sha.h"

namespace cloister::attestation::sim {

// An ECDSA signature as two big-endian integers, each the curve's scalar size (32 bytes for
// P-256, 48 for P-384).
struct EcdsaSignature {
  Bytes r;
  Bytes s;
  // r || s, the form Intel's quotes and collateral carry.
  Bytes raw() const;
};

// A private key. Cheap to copy (shared ownership of the OpenSSL object). It has no printable
// form: to_pem() exists for the state directory's 0600 key files.
class PrivateKey {
 public:
  static Result<PrivateKey> generate_rsa(int bits);
  // `curve_nid`: NID_secp384r1 or NID_X9_62_prime256v1.
  static Result<PrivateKey> generate_ec(int curve_nid);
  // An unencrypted PEM private key (PKCS#8 "PRIVATE KEY" or a traditional form).
  static Result<PrivateKey> from_pem(ByteView pem);

  // PKCS#8 PEM.
  Bytes to_pem() const;
  const PublicKey& public_key() const { return public_key_; }
  // ECDSA over `message` hashed with `hash` (EC keys only).
  Result<EcdsaSignature> sign_ecdsa(HashAlgorithm hash, ByteView message) const;

  EVP_PKEY* native() const { return key_.get(); }

 private:
  PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey public_key)
      : key_(std::move(key)), public_key_(std::move(public_key)) {}
  static Result<PrivateKey> wrap(EVP_PKEY* key, const char* what);

  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_key_;
};

// `size` bytes from OpenSSL's CSPRNG (aborts if it cannot deliver: nothing secret may be made
// from anything weaker).
Bytes random_bytes(std::size_t size);

}  // namespace cloister::attestation::sim
