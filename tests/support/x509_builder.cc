#include "support/x509_builder.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace cloister::testing {
namespace {

void add_name(X509_NAME* name, const X509Name& attributes) {
  for (const auto& [key, value] : attributes) {
    X509_NAME_add_entry_by_txt(name, key.c_str(), MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  }
}

EVP_MD_CTX* signing_context(EVP_PKEY* signer, SignatureScheme scheme) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  if (scheme == SignatureScheme::kEcdsaSha256) {
    EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), nullptr, signer);
    return ctx;
  }
  EVP_DigestSignInit(ctx, &pctx, EVP_sha384(), nullptr, signer);
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48);
  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384());
  return ctx;
}

void add_extension(X509* cert, const std::string& oid, const Bytes& value) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid.c_str(), 1);
  ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(data, value.data(), static_cast<int>(value.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, data);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(data);
  ASN1_OBJECT_free(obj);
}

}  // namespace

attestation::Certificate make_test_certificate(const CertificateSpec& spec) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), spec.serial);
  add_name(X509_get_subject_name(cert), spec.subject);
  add_name(X509_get_issuer_name(cert), spec.issuer);
  ASN1_TIME_set(X509_getm_notBefore(cert), spec.not_before);
  ASN1_TIME_set(X509_getm_notAfter(cert), spec.not_after);
  X509_set_pubkey(cert, spec.subject_key);
  for (const auto& [oid, value] : spec.extensions) add_extension(cert, oid, value);
  EVP_MD_CTX* ctx = signing_context(spec.issuer_key, spec.scheme);
  EXPECT_GT(X509_sign_ctx(cert, ctx), 0) << "signing a test certificate failed";
  EVP_MD_CTX_free(ctx);
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  X509_free(cert);
  auto parsed = attestation::Certificate::from_der(bytes);
  EXPECT_TRUE(parsed) << parsed.error().message();
  return std::move(parsed).value();
}

attestation::Crl make_test_crl(const CrlSpec& spec) {
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  add_name(X509_CRL_get_issuer(crl), spec.issuer);
  ASN1_TIME* t = ASN1_TIME_set(nullptr, spec.this_update);
  X509_CRL_set1_lastUpdate(crl, t);
  ASN1_TIME_set(t, spec.next_update);
  X509_CRL_set1_nextUpdate(crl, t);
  for (const auto& serial : spec.revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
    ASN1_INTEGER* s = BN_to_ASN1_INTEGER(bn, nullptr);
    X509_REVOKED_set_serialNumber(entry, s);
    ASN1_TIME_set(t, spec.this_update - 86400);
    X509_REVOKED_set_revocationDate(entry, t);
    X509_CRL_add0_revoked(crl, entry);
    ASN1_INTEGER_free(s);
    BN_free(bn);
  }
  ASN1_TIME_free(t);
  EVP_MD_CTX* ctx = signing_context(spec.key, spec.scheme);
  EXPECT_GT(X509_CRL_sign_ctx(crl, ctx), 0) << "signing a test CRL failed";
  EVP_MD_CTX_free(ctx);
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl, &der);
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  X509_CRL_free(crl);
  auto parsed = attestation::Crl::parse(bytes);
  EXPECT_TRUE(parsed) << parsed.error().message();
  return std::move(parsed).value();
}

}  // namespace cloister::testing
