#include "cloister/attestation/sim/keys.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

namespace cloister::attestation::sim {
namespace {

const EVP_MD* md_for(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kSha256:
      return EVP_sha256();
    case HashAlgorithm::kSha384:
      return EVP_sha384();
    case HashAlgorithm::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

}  // namespace

Bytes EcdsaSignature::raw() const {
  Bytes out = r;
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

Result<PrivateKey> PrivateKey::wrap(EVP_PKEY* key, const char* what) {
  if (key == nullptr) return Error(std::string(what) + ": " + openssl_error());
  std::shared_ptr<EVP_PKEY> owned(key, EVP_PKEY_free);
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return Error(std::string(what) + ": no public key: " + openssl_error());
  Bytes spki(der, der + len);
  OPENSSL_free(der);
  CLOISTER_TRY(PublicKey public_key, PublicKey::from_spki_der(spki));
  return PrivateKey(std::move(owned), std::move(public_key));
}

Result<PrivateKey> PrivateKey::generate_rsa(int bits) {
  return wrap(EVP_RSA_gen(static_cast<unsigned>(bits)), "RSA key generation");
}

Result<PrivateKey> PrivateKey::generate_ec(int curve_nid) {
  return wrap(EVP_EC_gen(OBJ_nid2sn(curve_nid)), "EC key generation");
}

Result<PrivateKey> PrivateKey::from_pem(ByteView pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return wrap(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
              "not a PEM private key");
}

Bytes PrivateKey::to_pem() const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return Bytes(data, data + len);
}

Result<EcdsaSignature> PrivateKey::sign_ecdsa(HashAlgorithm hash, ByteView message) const {
  if (EVP_PKEY_get_base_id(key_.get()) != EVP_PKEY_EC)
    return Error("ECDSA signing needs an EC key, found " + public_key_.describe());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, md_for(hash), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
    return Error("ECDSA signing: " + openssl_error());
  }
  Bytes der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len, message.data(), message.size()) != 1)
    return Error("ECDSA signing: " + openssl_error());
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)), ECDSA_SIG_free);
  if (!sig) return Error("ECDSA signing: " + openssl_error());
  const int scalar = (EVP_PKEY_get_bits(key_.get()) + 7) / 8;
  EcdsaSignature out{Bytes(static_cast<std::size_t>(scalar)),
                     Bytes(static_cast<std::size_t>(scalar))};
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.r.data(), scalar);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.s.data(), scalar);
  return out;
}

Bytes random_bytes(std::size_t size) {
  Bytes out(size);
  if (size > 0 && RAND_bytes(out.data(), static_cast<int>(size)) != 1)
    cloister::detail::result_misuse("random_bytes", "the CSPRNG failed: " + openssl_error());
  return out;
}

}  // namespace cloister::attestation::sim
