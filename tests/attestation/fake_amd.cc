#include "fake_amd.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>

#include "cloister/attestation/snp/abi.h"
#include "cloister/common/sha.h"

namespace cloister::testing {
namespace {

using attestation::snp::product_name;

std::shared_ptr<EVP_PKEY> load_key(const std::string& name) {
  std::string path = std::string(CLOISTER_FAKE_AMD_KEYS_DIR) + "/" + name;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    ADD_FAILURE() << "missing build-time test key " << path;
    return nullptr;
  }
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return {key, EVP_PKEY_free};
}

std::shared_ptr<EVP_PKEY> new_p384_key() {
  return {EVP_EC_gen("P-384"), EVP_PKEY_free};
}

void add_name(X509_NAME* name, const std::string& cn) {
  const std::pair<const char*, const char*> fields[] = {{"OU", "Engineering"},
                                                        {"C", "US"},
                                                        {"L", "Santa Clara"},
                                                        {"ST", "CA"},
                                                        {"O", "Advanced Micro Devices"}};
  for (const auto& [k, v] : fields)
    X509_NAME_add_entry_by_txt(name, k, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(v),
                               -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
}

// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48: AMD's signature scheme.
EVP_MD_CTX* pss_context(EVP_PKEY* signer) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, EVP_sha384(), nullptr, signer);
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48);
  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384());
  return ctx;
}

void add_raw_extension(X509* cert, const char* oid, const Bytes& value) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
  ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(data, value.data(), static_cast<int>(value.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, data);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(data);
  ASN1_OBJECT_free(obj);
}

Bytes der_integer(long v) {
  ASN1_INTEGER* i = ASN1_INTEGER_new();
  ASN1_INTEGER_set(i, v);
  unsigned char* der = nullptr;
  int len = i2d_ASN1_INTEGER(i, &der);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  ASN1_INTEGER_free(i);
  return out;
}

Bytes der_ia5(const std::string& s) {
  ASN1_IA5STRING* str = ASN1_IA5STRING_new();
  ASN1_STRING_set(str, s.data(), static_cast<int>(s.size()));
  unsigned char* der = nullptr;
  int len = i2d_ASN1_IA5STRING(str, &der);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  ASN1_IA5STRING_free(str);
  return out;
}

Certificate make_cert(const std::string& subject_cn, const std::string& issuer_cn, long serial,
                      EVP_PKEY* subject_key, EVP_PKEY* issuer_key, UnixTime not_before,
                      UnixTime not_after, const std::vector<std::pair<const char*, Bytes>>& exts) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  add_name(X509_get_subject_name(cert), subject_cn);
  add_name(X509_get_issuer_name(cert), issuer_cn);
  ASN1_TIME_set(X509_getm_notBefore(cert), not_before);
  ASN1_TIME_set(X509_getm_notAfter(cert), not_after);
  X509_set_pubkey(cert, subject_key);
  for (const auto& [oid, value] : exts) add_raw_extension(cert, oid, value);
  EVP_MD_CTX* ctx = pss_context(issuer_key);
  X509_sign_ctx(cert, ctx);
  EVP_MD_CTX_free(ctx);
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  X509_free(cert);
  return *Certificate::from_der(bytes);
}

Crl make_crl(const std::string& issuer_cn, EVP_PKEY* key, const std::vector<Bytes>& revoked,
             UnixTime this_update, UnixTime next_update) {
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  add_name(X509_CRL_get_issuer(crl), issuer_cn);
  ASN1_TIME* t = ASN1_TIME_set(nullptr, this_update);
  X509_CRL_set1_lastUpdate(crl, t);
  ASN1_TIME_set(t, next_update);
  X509_CRL_set1_nextUpdate(crl, t);
  for (const auto& serial : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
    ASN1_INTEGER* s = BN_to_ASN1_INTEGER(bn, nullptr);
    X509_REVOKED_set_serialNumber(entry, s);
    ASN1_TIME_set(t, this_update - 86400);
    X509_REVOKED_set_revocationDate(entry, t);
    X509_CRL_add0_revoked(crl, entry);
    ASN1_INTEGER_free(s);
    BN_free(bn);
  }
  ASN1_TIME_free(t);
  EVP_MD_CTX* ctx = pss_context(key);
  X509_CRL_sign_ctx(crl, ctx);
  EVP_MD_CTX_free(ctx);
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl, &der);
  Bytes bytes(der, der + len);
  OPENSSL_free(der);
  X509_CRL_free(crl);
  return *Crl::parse(bytes);
}

std::vector<std::pair<const char*, Bytes>> vek_extensions(Product product, const VekSpec& spec,
                                                          bool vcek) {
  namespace oid = attestation::snp::oid;
  std::vector<std::pair<const char*, Bytes>> exts = {
      {oid::kStructVersion, der_integer(spec.tcb.fmc ? 1 : 0)},
      {oid::kProductName,
       der_ia5(spec.product_name.empty() ? std::string(product_name(product)) : spec.product_name)},
      {oid::kBlSpl, der_integer(spec.tcb.bl)},
      {oid::kTeeSpl, der_integer(spec.tcb.tee)},
      {oid::kSnpSpl, der_integer(spec.tcb.snp)},
      {oid::kUcodeSpl, der_integer(spec.tcb.ucode)},
  };
  if (spec.tcb.fmc) exts.push_back({oid::kFmcSpl, der_integer(*spec.tcb.fmc)});
  if (vcek) {
    exts.push_back({oid::kHwId, spec.hw_id});
  } else {
    exts.push_back({oid::kCspId, der_ia5(spec.csp_id)});
  }
  return exts;
}

}  // namespace

FakeAmd::FakeAmd(Product product)
    : product_(product),
      ark_key_(load_key("fake_ark.pem")),
      ask_key_(load_key("fake_ask.pem")),
      asvk_key_(load_key("fake_asvk.pem")),
      ark_(make_cert("ARK-" + std::string(product_name(product)),
                     "ARK-" + std::string(product_name(product)), 0x10000, ark_key_.get(),
                     ark_key_.get(), 1600000000, 2400000000, {})),
      ask_(make_cert("SEV-" + std::string(product_name(product)),
                     "ARK-" + std::string(product_name(product)), 0x10001, ask_key_.get(),
                     ark_key_.get(), 1600000000, 2400000000, {})),
      asvk_(make_cert("SEV-VLEK-" + std::string(product_name(product)),
                      "ARK-" + std::string(product_name(product)), 0x10101, asvk_key_.get(),
                      ark_key_.get(), 1600000000, 2400000000, {})) {}

attestation::snp::AmdCa FakeAmd::ca() const {
  return {product_, ark_, ask_, asvk_};
}

FakeVek FakeAmd::vcek(const VekSpec& spec) const {
  auto key = new_p384_key();
  std::string issuer = spec.issuer_cn.empty() ? ask_.subject_cn() : spec.issuer_cn;
  return {make_cert("SEV-VCEK", issuer, 0, key.get(), ask_key_.get(), spec.not_before,
                    spec.not_after, vek_extensions(product_, spec, true)),
          key};
}

FakeVek FakeAmd::vlek(const VekSpec& spec) const {
  auto key = new_p384_key();
  std::string issuer = spec.issuer_cn.empty() ? asvk_.subject_cn() : spec.issuer_cn;
  return {make_cert("SEV-VLEK", issuer, 0, key.get(), asvk_key_.get(), spec.not_before,
                    spec.not_after, vek_extensions(product_, spec, false)),
          key};
}

Crl FakeAmd::crl(const std::vector<Bytes>& revoked, UnixTime this_update,
                 UnixTime next_update) const {
  return make_crl(ark_.subject_cn(), ark_key_.get(), revoked, this_update, next_update);
}

Crl FakeAmd::crl_signed_by_ask(UnixTime this_update, UnixTime next_update) const {
  return make_crl(ark_.subject_cn(), ask_key_.get(), {}, this_update, next_update);
}

void sign_report(Bytes& report, const FakeVek& vek) {
  namespace snp = attestation::snp;
  auto digest = sha384(ByteView(report).first(snp::kSignedSize));
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(vek.key.get(), nullptr);
  EVP_PKEY_sign_init(ctx);
  std::size_t len = 0;
  EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size());
  Bytes der(len);
  EVP_PKEY_sign(ctx, der.data(), &len, digest.data(), digest.size());
  EVP_PKEY_CTX_free(ctx);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::fill(report.begin() + snp::offset::kSignature, report.end(), 0);
  BN_bn2lebinpad(r, report.data() + snp::offset::kSignatureR, snp::kSignatureComponentSize);
  BN_bn2lebinpad(s, report.data() + snp::offset::kSignatureS, snp::kSignatureComponentSize);
  ECDSA_SIG_free(sig);
}

Bytes make_signed_report(Product product, const FakeVek& vek, std::uint64_t tcb_raw,
                         ByteView chip_id, std::uint32_t signer_info) {
  namespace snp = attestation::snp;
  Bytes r(snp::kReportSize, 0);
  store_le32(r, snp::offset::kVersion, 3);
  store_le64(r, snp::offset::kPolicy, 0x30000);
  store_le32(r, snp::offset::kSignatureAlgo, 1);
  store_le32(r, snp::offset::kSignerInfo, signer_info);
  for (auto off : {snp::offset::kCurrentTcb, snp::offset::kReportedTcb, snp::offset::kCommittedTcb,
                   snp::offset::kLaunchTcb})
    store_le64(r, off, tcb_raw);
  switch (product) {
    case Product::kMilan:
      r[snp::offset::kCpuidFamId] = 0x19;
      r[snp::offset::kCpuidModId] = 0x01;
      break;
    case Product::kGenoa:
      r[snp::offset::kCpuidFamId] = 0x19;
      r[snp::offset::kCpuidModId] = 0x11;
      break;
    case Product::kTurin:
      r[snp::offset::kCpuidFamId] = 0x1a;
      r[snp::offset::kCpuidModId] = 0x02;
      break;
    case Product::kVenice:
      r[snp::offset::kCpuidFamId] = 0x1a;
      r[snp::offset::kCpuidModId] = 0x50;
      break;
  }
  std::copy(chip_id.begin(), chip_id.end(), r.begin() + snp::offset::kChipId);
  std::fill_n(r.begin() + snp::offset::kReportIdMa, 32, 0xff);
  r[snp::offset::kCurrentMajor] = 1;
  r[snp::offset::kCurrentMinor] = 55;
  r[snp::offset::kCommittedMajor] = 1;
  r[snp::offset::kCommittedMinor] = 55;
  sign_report(r, vek);
  return r;
}

}  // namespace cloister::testing
