#include "openssl_util.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

namespace cloister::service::detail {
namespace {

using ParamBldPtr =
    std::unique_ptr<OSSL_PARAM_BLD, OpensslDeleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OpensslDeleter<OSSL_PARAM, OSSL_PARAM_free>>;

constexpr Curve kCurves[] = {
    {"P-256", "P-256", 32},
    {"P-384", "P-384", 48},
    {"P-521", "P-521", 66},
};

Result<PkeyPtr> from_params(const char* type, int selection, OSSL_PARAM_BLD* builder,
                            std::string_view what) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(builder));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) != 1) {
    return openssl_error(what);
  }
  return PkeyPtr(raw);
}

Result<Bytes> bn_param(const EVP_PKEY* key, const char* name, std::size_t pad) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return openssl_error(name);
  BnPtr bn(raw);
  const int size = BN_num_bytes(bn.get());
  Bytes out(std::max<std::size_t>(pad, static_cast<std::size_t>(size)));
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(out.size())) < 0) {
    return openssl_error(name);
  }
  return out;
}

}  // namespace

Error openssl_error(std::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char text[256] = "no OpenSSL error queued";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  return Error(std::string(what) + ": " + text);
}

Result<Curve> curve_by_name(std::string_view jose_name, std::string_view where) {
  for (const auto& c : kCurves)
    if (c.jose_name == jose_name) return c;
  return Error(std::string(where) + ": expected curve P-256, P-384 or P-521, found \"" +
               std::string(jose_name) + "\"");
}

Result<Curve> curve_of(const EVP_PKEY* key) {
  char name[64] = {};
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, nullptr) !=
      1) {
    return Error("key: not an EC key with a named curve");
  }
  const std::string_view n(name);
  if (n == "prime256v1" || n == "P-256") return kCurves[0];
  if (n == "secp384r1" || n == "P-384") return kCurves[1];
  if (n == "secp521r1" || n == "P-521") return kCurves[2];
  return Error("key: curve " + std::string(n) + " is not P-256, P-384 or P-521");
}

Result<PkeyPtr> ec_public_key(const Curve& curve, ByteView x, ByteView y) {
  if (x.size() != curve.coordinate_size || y.size() != curve.coordinate_size) {
    return Error(std::string(curve.jose_name) + " public key: expected " +
                 std::to_string(curve.coordinate_size) + "-byte coordinates, found x " +
                 std::to_string(x.size()) + " and y " + std::to_string(y.size()) + " bytes");
  }
  Bytes point{0x04};
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  // The builder keeps the pointer until OSSL_PARAM_BLD_to_param, so the name must outlive it.
  const std::string group(curve.openssl_name);
  ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(),
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return openssl_error("EC public key parameters");
  }
  auto key = from_params("EC", EVP_PKEY_PUBLIC_KEY, builder.get(),
                         std::string(curve.jose_name) + " public key: not a point on the curve");
  if (!key) return key;
  // The quick check (coordinates in range, on the curve, not the point at infinity) is the
  // whole check on these curves: their cofactor is 1, so every such point has the group's
  // order, and the full check's multiplication by the order would prove nothing more.
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
    return openssl_error(std::string(curve.jose_name) + " public key: not a valid point");
  }
  return key;
}

Result<std::pair<Bytes, Bytes>> ec_coordinates(const EVP_PKEY* key) {
  CLOISTER_TRY(const Curve curve, curve_of(key));
  CLOISTER_TRY(Bytes x, bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, curve.coordinate_size));
  CLOISTER_TRY(Bytes y, bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, curve.coordinate_size));
  return std::make_pair(std::move(x), std::move(y));
}

Result<PkeyPtr> ec_generate(const Curve& curve) {
  EVP_PKEY* raw =
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", std::string(curve.openssl_name).c_str());
  if (!raw) return openssl_error(std::string(curve.jose_name) + " key generation");
  return PkeyPtr(raw);
}

Result<PkeyPtr> rsa_public_key(ByteView n, ByteView e) {
  BnPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return openssl_error("RSA public key parameters");
  }
  return from_params("RSA", EVP_PKEY_PUBLIC_KEY, builder.get(), "RSA public key");
}

Result<std::pair<Bytes, Bytes>> rsa_components(const EVP_PKEY* key) {
  CLOISTER_TRY(Bytes n, bn_param(key, OSSL_PKEY_PARAM_RSA_N, 0));
  CLOISTER_TRY(Bytes e, bn_param(key, OSSL_PKEY_PARAM_RSA_E, 0));
  return std::make_pair(std::move(n), std::move(e));
}

Result<Bytes> random_bytes(std::size_t size) {
  Bytes out(size);
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return openssl_error("random bytes");
  }
  return out;
}

Result<Sealed> gcm_seal(ByteView key, ByteView iv, ByteView aad, ByteView plaintext) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Sealed out{Bytes(plaintext.size()), Bytes(kGcmTagSize)};
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.ciphertext.data(), &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.ciphertext.data() + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagSize),
                          out.tag.data()) != 1) {
    return openssl_error("A256GCM encryption");
  }
  return out;
}

Result<Bytes> gcm_open(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes plaintext(ciphertext.size());
  int len = 0;
  Bytes tag_copy(tag.begin(), tag.end());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plaintext.data(), &len, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_copy.size()),
                          tag_copy.data()) != 1) {
    return openssl_error("A256GCM decryption");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + len, &len) != 1) {
    return Error("A256GCM authentication tag does not verify");
  }
  return plaintext;
}

}  // namespace cloister::service::detail
