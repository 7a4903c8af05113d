// OpenSSL ownership and the few EC/RSA conversions the JOSE code needs, private to the service.
#pragma once

#include <openssl/bn.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::service::detail {

template <typename T, void (*Free)(T*)>
struct OpensslDeleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpensslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using CipherCtxPtr =
    std::unique_ptr<EVP_CIPHER_CTX, OpensslDeleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslDeleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, OpensslDeleter<BIGNUM, BN_free>>;

// "<what>: <OpenSSL's first queued error>" (the queue is cleared).
Error openssl_error(std::string_view what);

// JOSE curve names and their sizes (RFC 7518 §6.2.1.1).
struct Curve {
  std::string_view jose_name;     // "P-256"
  std::string_view openssl_name;  // "P-256" (OpenSSL 3 knows the NIST names)
  std::size_t coordinate_size;    // bytes of x, y and d
};
// P-256, P-384 or P-521; errors name `where`.
Result<Curve> curve_by_name(std::string_view jose_name, std::string_view where);
Result<Curve> curve_of(const EVP_PKEY* key);

// An EC public key from its affine coordinates (each exactly coordinate_size bytes), checked to
// be on the curve.
Result<PkeyPtr> ec_public_key(const Curve& curve, ByteView x, ByteView y);
// The affine coordinates of an EC key, each padded to the curve's coordinate size.
Result<std::pair<Bytes, Bytes>> ec_coordinates(const EVP_PKEY* key);
// A fresh key pair on `curve`.
Result<PkeyPtr> ec_generate(const Curve& curve);

// An RSA public key from its big-endian modulus and exponent.
Result<PkeyPtr> rsa_public_key(ByteView n, ByteView e);
// The modulus and public exponent of an RSA key, big-endian without leading zeros.
Result<std::pair<Bytes, Bytes>> rsa_components(const EVP_PKEY* key);

// Fresh random bytes from OpenSSL's CSPRNG.
Result<Bytes> random_bytes(std::size_t size);

// AES-256-GCM with a 128-bit tag.
inline constexpr std::size_t kGcmTagSize = 16;
struct Sealed {
  Bytes ciphertext;
  Bytes tag;
};
Result<Sealed> gcm_seal(ByteView key, ByteView iv, ByteView aad, ByteView plaintext);
// Fails with "A256GCM authentication tag does not verify" when the tag, key, IV or AAD differ.
Result<Bytes> gcm_open(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag);

}  // namespace cloister::service::detail
