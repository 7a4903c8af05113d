#include "fake_amd.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>

#include "cloister/attestation/snp/abi.h"
#include "cloister/common/sha.h"
#include "support/x509_builder.h"

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

X509Name amd_name(const std::string& cn) {
  return {{"OU", "Engineering"},           {"C", "US"}, {"L", "Santa Clara"}, {"ST", "CA"},
          {"O", "Advanced Micro Devices"}, {"CN", cn}};
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
                      UnixTime not_after, std::vector<std::pair<std::string, Bytes>> exts) {
  return make_test_certificate({amd_name(subject_cn), amd_name(issuer_cn), serial, not_before,
                                not_after, subject_key, issuer_key, SignatureScheme::kRsaPssSha384,
                                std::move(exts)});
}

Crl make_crl(const std::string& issuer_cn, EVP_PKEY* key, const std::vector<Bytes>& revoked,
             UnixTime this_update, UnixTime next_update) {
  return make_test_crl({amd_name(issuer_cn), key, SignatureScheme::kRsaPssSha384, revoked,
                        this_update, next_update});
}

std::vector<std::pair<std::string, Bytes>> vek_extensions(Product product, const VekSpec& spec,
                                                          bool vcek) {
  namespace oid = attestation::snp::oid;
  std::vector<std::pair<std::string, Bytes>> exts = {
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
