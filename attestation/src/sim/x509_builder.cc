#include "cloister/attestation/sim/x509_builder.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace cloister::attestation::sim {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;

Status add_name(X509_NAME* name, const X509Name& attributes) {
  for (const auto& [key, value] : attributes) {
    if (X509_NAME_add_entry_by_txt(name, key.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1)
      return Error("name attribute " + key + "=" + value + ": " + openssl_error());
  }
  return {};
}

Result<MdCtxPtr> signing_context(const PrivateKey& signer, SignatureScheme scheme) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = scheme == SignatureScheme::kEcdsaSha256 ? EVP_sha256() : EVP_sha384();
  if (EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, signer.native()) != 1)
    return Error("signing with " + signer.public_key().describe() + ": " + openssl_error());
  if (scheme == SignatureScheme::kRsaPssSha384 &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1))
    return Error("RSASSA-PSS parameters: " + openssl_error());
  return ctx;
}

// A standard extension in OpenSSL's configuration syntax ("critical,CA:TRUE").
Status add_standard_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Error(std::string(OBJ_nid2sn(nid)) + ": " + openssl_error());
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return Error(std::string(OBJ_nid2sn(nid)) + ": " + openssl_error());
  return {};
}

Status add_raw_extension(X509* cert, const std::string& oid, const Bytes& value) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid.c_str(), 1);
  ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(data, value.data(), static_cast<int>(value.size()));
  X509_EXTENSION* ext =
      obj == nullptr ? nullptr : X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, data);
  const int ok = ext == nullptr ? 0 : X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(data);
  ASN1_OBJECT_free(obj);
  if (ok != 1) return Error("extension " + oid + ": " + openssl_error());
  return {};
}

}  // namespace

Result<Certificate> issue_certificate(const CertificateSpec& spec, const PublicKey& subject_key,
                                      const Certificate* issuer, const PrivateKey& issuer_key,
                                      SignatureScheme scheme) {
  X509Ptr cert(X509_new());
  X509* x = cert.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), spec.serial);
  CLOISTER_CHECK_OK(add_name(X509_get_subject_name(x), spec.subject));
  if (issuer == nullptr) {
    X509_set_issuer_name(x, X509_get_subject_name(x));
  } else {
    X509_set_issuer_name(x, X509_get_subject_name(issuer->native()));
  }
  ASN1_TIME_set(X509_getm_notBefore(x), spec.not_before);
  ASN1_TIME_set(X509_getm_notAfter(x), spec.not_after);
  X509_set_pubkey(x, subject_key.native());
  // The issuer as OpenSSL's extension context sees it (for the authority key identifier).
  X509* issuer_x509 = issuer == nullptr ? x : issuer->native();
  if (spec.ca) {
    const std::string constraints =
        "critical,CA:TRUE" +
        (spec.path_length ? ",pathlen:" + std::to_string(*spec.path_length) : std::string());
    CLOISTER_CHECK_OK(add_standard_extension(x, issuer_x509, NID_basic_constraints, constraints));
    CLOISTER_CHECK_OK(
        add_standard_extension(x, issuer_x509, NID_key_usage, "critical,keyCertSign,cRLSign"));
    CLOISTER_CHECK_OK(add_standard_extension(x, issuer_x509, NID_subject_key_identifier, "hash"));
    CLOISTER_CHECK_OK(
        add_standard_extension(x, issuer_x509, NID_authority_key_identifier, "keyid:always"));
  }
  for (const auto& uri : spec.crl_distribution_points)
    CLOISTER_CHECK_OK(
        add_standard_extension(x, issuer_x509, NID_crl_distribution_points, "URI:" + uri));
  for (const auto& [oid, value] : spec.extensions)
    CLOISTER_CHECK_OK(add_raw_extension(x, oid, value));
  CLOISTER_TRY(MdCtxPtr ctx, signing_context(issuer_key, scheme));
  if (X509_sign_ctx(x, ctx.get()) <= 0) return Error("signing a certificate: " + openssl_error());
  unsigned char* der = nullptr;
  const int len = i2d_X509(x, &der);
  if (len <= 0) return Error("encoding certificate: " + openssl_error());
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  return Certificate::from_der(bytes);
}

Result<Crl> issue_crl(const CrlSpec& spec, const Certificate& issuer, const PrivateKey& key,
                      SignatureScheme scheme) {
  CrlPtr crl(X509_CRL_new());
  X509_CRL* c = crl.get();
  X509_CRL_set_version(c, X509_CRL_VERSION_2);
  X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer.native()));
  TimePtr t(ASN1_TIME_set(nullptr, spec.this_update));
  X509_CRL_set1_lastUpdate(c, t.get());
  ASN1_TIME_set(t.get(), spec.next_update);
  X509_CRL_set1_nextUpdate(c, t.get());
  for (const auto& serial : spec.revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
    ASN1_INTEGER* s = BN_to_ASN1_INTEGER(bn, nullptr);
    X509_REVOKED_set_serialNumber(entry, s);
    ASN1_TIME_set(t.get(), spec.this_update - 86400);
    X509_REVOKED_set_revocationDate(entry, t.get());
    X509_CRL_add0_revoked(c, entry);
    ASN1_INTEGER_free(s);
    BN_free(bn);
  }
  ASN1_INTEGER* number = ASN1_INTEGER_new();
  ASN1_INTEGER_set(number, spec.crl_number);
  const int added = X509_CRL_add1_ext_i2d(c, NID_crl_number, number, 0, 0);
  ASN1_INTEGER_free(number);
  if (added != 1) return Error("CRL number: " + openssl_error());
  CLOISTER_TRY(MdCtxPtr ctx, signing_context(key, scheme));
  if (X509_CRL_sign_ctx(c, ctx.get()) <= 0)
    return Error("signing the CRL of " + issuer.subject_cn() + ": " + openssl_error());
  unsigned char* der = nullptr;
  const int len = i2d_X509_CRL(c, &der);
  if (len <= 0) return Error("encoding CRL: " + openssl_error());
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  return Crl::parse(bytes);
}

std::string certificate_pem(const Certificate& cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert.native());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace cloister::attestation::sim
