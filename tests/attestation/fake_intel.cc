#include "fake_intel.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cloister/attestation/tdx/abi.h"
#include "cloister/attestation/tdx/pck.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "support/x509_builder.h"

namespace cloister::testing {
namespace {

namespace tdx = attestation::tdx;
using json = nlohmann::json;

std::shared_ptr<EVP_PKEY> new_p256_key() {
  return {EVP_EC_gen("P-256"), EVP_PKEY_free};
}

std::array<std::uint8_t, 64> raw_public_key(EVP_PKEY* key) {
  std::uint8_t point[65];
  std::size_t len = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
  std::array<std::uint8_t, 64> out{};
  std::copy(point + 1, point + 65, out.begin());
  return out;
}

// ECDSA P-256/SHA-256 as raw r||s.
std::array<std::uint8_t, 64> sign_raw(EVP_PKEY* key, ByteView message) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, message.data(), message.size());
  Bytes der(len);
  EVP_DigestSign(ctx, der.data(), &len, message.data(), message.size());
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::array<std::uint8_t, 64> out{};
  BN_bn2binpad(r, out.data(), 32);
  BN_bn2binpad(s, out.data() + 32, 32);
  ECDSA_SIG_free(sig);
  return out;
}

// ---- DER for the SGX extension ----------------------------------------------------------
Bytes tlv(std::uint8_t tag, const Bytes& content) {
  Bytes out{tag};
  if (content.size() < 0x80) {
    out.push_back(static_cast<std::uint8_t>(content.size()));
  } else if (content.size() < 0x100) {
    out.push_back(0x81);
    out.push_back(static_cast<std::uint8_t>(content.size()));
  } else {
    out.push_back(0x82);
    out.push_back(static_cast<std::uint8_t>(content.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(content.size()));
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes der_oid(const std::string& dotted) {
  ASN1_OBJECT* obj = OBJ_txt2obj(dotted.c_str(), 1);
  unsigned char* der = nullptr;
  int len = i2d_ASN1_OBJECT(obj, &der);
  Bytes out(der, der + len);
  OPENSSL_free(der);
  ASN1_OBJECT_free(obj);
  return out;
}

Bytes der_int(long v, std::uint8_t tag = 0x02) {
  ASN1_INTEGER* i = ASN1_INTEGER_new();
  ASN1_INTEGER_set(i, v);
  unsigned char* der = nullptr;
  int len = i2d_ASN1_INTEGER(i, &der);
  Bytes out(der, der + len);
  out[0] = tag;
  OPENSSL_free(der);
  ASN1_INTEGER_free(i);
  return out;
}

Bytes octets(ByteView b) {
  return tlv(0x04, Bytes(b.begin(), b.end()));
}

Bytes member(const std::string& oid, const Bytes& value) {
  Bytes content = der_oid(oid);
  content.insert(content.end(), value.begin(), value.end());
  return tlv(0x30, content);
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes sgx_extension(const PckSpec& spec) {
  namespace oid = tdx::oid;
  std::vector<Bytes> tcb;
  for (int i = 0; i < 16; ++i)
    tcb.push_back(member(std::string(oid::kTcb) + "." + std::to_string(i + 1),
                         der_int(spec.tcb_components[static_cast<std::size_t>(i)])));
  tcb.push_back(member(std::string(oid::kTcb) + ".17", der_int(spec.pcesvn)));
  tcb.push_back(member(std::string(oid::kTcb) + ".18", octets(spec.tcb_components)));
  const std::string config = oid::kConfiguration;
  return tlv(
      0x30,
      concat({member(oid::kPpid, octets(Bytes(16, 0x77))),
              member(oid::kTcb, tlv(0x30, concat(tcb))), member(oid::kPceId, octets(Bytes(2, 0))),
              member(oid::kFmspc, octets(spec.fmspc)), member(oid::kSgxType, der_int(1, 0x0a)),
              member(oid::kPlatformInstanceId, octets(Bytes(16, 0x33))),
              member(config, tlv(0x30, concat({member(config + ".1", {0x01, 1, 0xff}),
                                               member(config + ".2", {0x01, 1, 0}),
                                               member(config + ".3", {0x01, 1, 0xff})})))}));
}

// ---- Certificates and CRLs --------------------------------------------------------------
X509Name intel_name(const std::string& cn) {
  return {{"CN", cn}, {"O", "Intel Corporation"}, {"L", "Santa Clara"}, {"ST", "CA"}, {"C", "US"}};
}

Certificate make_cert(const std::string& subject, const std::string& issuer, long serial,
                      EVP_PKEY* subject_key, EVP_PKEY* issuer_key, UnixTime not_before,
                      UnixTime not_after, const std::optional<Bytes>& sgx = std::nullopt) {
  std::vector<std::pair<std::string, Bytes>> extensions;
  if (sgx) extensions.emplace_back(tdx::oid::kSgxExtension, *sgx);
  return make_test_certificate({intel_name(subject), intel_name(issuer), serial, not_before,
                                not_after, subject_key, issuer_key, SignatureScheme::kEcdsaSha256,
                                std::move(extensions)});
}

Crl make_crl(const std::string& issuer, EVP_PKEY* key, const std::vector<Bytes>& revoked,
             UnixTime this_update, UnixTime next_update) {
  return make_test_crl(
      {intel_name(issuer), key, SignatureScheme::kEcdsaSha256, revoked, this_update, next_update});
}

std::string pem_of(const Certificate& c) {
  X509* x = c.native();
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

void put(Bytes& b, std::size_t at, ByteView v) {
  std::copy(v.begin(), v.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
}

std::string signed_response(const char* member, const json& body, EVP_PKEY* key) {
  const std::string text = body.dump();
  const auto signature = sign_raw(key, as_bytes(text));
  return "{\"" + std::string(member) + "\":" + text + ",\"signature\":\"" + to_hex(signature) +
         "\"}";
}

}  // namespace

json tcb_level_json(const std::array<std::uint8_t, 16>& sgx, int pcesvn,
                    const std::array<std::uint8_t, 16>& tdx, const std::string& status,
                    const std::string& date, const std::vector<std::string>& advisories) {
  json sgx_list = json::array(), tdx_list = json::array();
  for (auto v : sgx) sgx_list.push_back({{"svn", v}});
  for (auto v : tdx) tdx_list.push_back({{"svn", v}});
  json level = {
      {"tcb", {{"sgxtcbcomponents", sgx_list}, {"pcesvn", pcesvn}, {"tdxtcbcomponents", tdx_list}}},
      {"tcbDate", date},
      {"tcbStatus", status}};
  if (!advisories.empty()) level["advisoryIDs"] = advisories;
  return level;
}

FakeIntel::FakeIntel()
    : root_key_(new_p256_key()),
      platform_key_(new_p256_key()),
      signing_key_(new_p256_key()),
      root_(make_cert(tdx::kRootCaCn, tdx::kRootCaCn, 0x10, root_key_.get(), root_key_.get(),
                      1500000000, 2500000000)),
      platform_ca_(make_cert(tdx::kPlatformCaCn, tdx::kRootCaCn, 0x20, platform_key_.get(),
                             root_key_.get(), 1500000000, 2400000000)),
      tcb_signing_(make_cert(tdx::kTcbSigningCn, tdx::kRootCaCn, 0x30, signing_key_.get(),
                             root_key_.get(), 1500000000, 2400000000)) {}

FakePck FakeIntel::pck(const PckSpec& spec) const {
  auto key = new_p256_key();
  return {make_cert(tdx::kPckLeafCn, tdx::kPlatformCaCn, spec.serial, key.get(),
                    platform_key_.get(), spec.not_before, spec.not_after, sgx_extension(spec)),
          key};
}

Bytes FakeIntel::quote(const FakePck& pck, const QuoteSpec& spec) const {
  namespace off = tdx::body_offset;
  const bool v5 = spec.version == 5;
  const std::size_t body_at = tdx::kHeaderSize + (v5 ? tdx::kBodyDescriptorSize : 0);
  const std::size_t body_size = v5 ? tdx::kTdReport15Size : tdx::kTdReport10Size;
  Bytes q(body_at + body_size, 0);
  store_le16(q, 0, spec.version);
  store_le16(q, 2, tdx::kAttKeyTypeEcdsaP256);
  store_le32(q, 4, tdx::kTeeTypeTdx);
  put(q, 12, tdx::kIntelQeVendorId);
  if (v5) {
    store_le16(q, 48, tdx::kBodyTypeTdReport15);
    store_le32(q, 50, static_cast<std::uint32_t>(body_size));
  }
  put(q, body_at + off::kTeeTcbSvn, spec.tee_tcb_svn);
  put(q, body_at + off::kMrSeam, Bytes(48, 0xaa));
  store_le64(q, body_at + off::kTdAttributes, spec.td_attributes);
  store_le64(q, body_at + off::kXfam, 0x61ae7);
  put(q, body_at + off::kMrTd, Bytes(48, 0x11));
  for (std::size_t i = 0; i < 4; ++i)
    put(q, body_at + off::kRtmr0 + 48 * i, Bytes(48, static_cast<std::uint8_t>(0x40 + i)));
  put(q, body_at + off::kReportData, Bytes(64, 0x22));
  if (v5) put(q, body_at + off::kTeeTcbSvn2, spec.tee_tcb_svn2);

  auto attestation_key = new_p256_key();
  const auto public_key = raw_public_key(attestation_key.get());
  Bytes qe(tdx::kQeReportSize, 0);
  qe[tdx::qe_offset::kAttributes] = 0x11;
  put(qe, tdx::qe_offset::kMrSigner,
      *from_hex("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5"));
  store_le16(qe, tdx::qe_offset::kIsvProdId, 2);
  store_le16(qe, tdx::qe_offset::kIsvSvn, spec.qe_isvsvn);
  Bytes bound(public_key.begin(), public_key.end());
  if (spec.bind_other_key) bound[0] ^= 1;
  bound.insert(bound.end(), spec.qe_auth_data.begin(), spec.qe_auth_data.end());
  put(qe, tdx::qe_offset::kReportData, sha256(bound));
  if (spec.nonzero_report_data_tail) qe[tdx::qe_offset::kReportData + 63] = 1;
  const auto qe_signature = sign_raw(pck.key.get(), qe);

  const std::string chain = pem_of(pck.cert) + pem_of(platform_ca_) + pem_of(root_);
  Bytes cert_data = qe;
  cert_data.insert(cert_data.end(), qe_signature.begin(), qe_signature.end());
  Bytes u16(2), u32(4);
  store_le16(u16, 0, static_cast<std::uint16_t>(spec.qe_auth_data.size()));
  cert_data.insert(cert_data.end(), u16.begin(), u16.end());
  cert_data.insert(cert_data.end(), spec.qe_auth_data.begin(), spec.qe_auth_data.end());
  store_le16(u16, 0, tdx::kCertDataPckChain);
  store_le32(u32, 0, static_cast<std::uint32_t>(chain.size()));
  cert_data.insert(cert_data.end(), u16.begin(), u16.end());
  cert_data.insert(cert_data.end(), u32.begin(), u32.end());
  cert_data.insert(cert_data.end(), chain.begin(), chain.end());

  const auto signature = sign_raw(attestation_key.get(), q);
  Bytes sig_data(signature.begin(), signature.end());
  sig_data.insert(sig_data.end(), public_key.begin(), public_key.end());
  store_le16(u16, 0, tdx::kCertDataQeReport);
  store_le32(u32, 0, static_cast<std::uint32_t>(cert_data.size()));
  sig_data.insert(sig_data.end(), u16.begin(), u16.end());
  sig_data.insert(sig_data.end(), u32.begin(), u32.end());
  sig_data.insert(sig_data.end(), cert_data.begin(), cert_data.end());
  store_le32(u32, 0, static_cast<std::uint32_t>(sig_data.size()));
  q.insert(q.end(), u32.begin(), u32.end());
  q.insert(q.end(), sig_data.begin(), sig_data.end());
  return q;
}

Crl FakeIntel::root_crl(const std::vector<Bytes>& revoked, UnixTime this_update,
                        UnixTime next_update) const {
  return make_crl(tdx::kRootCaCn, root_key_.get(), revoked, this_update, next_update);
}

Crl FakeIntel::pck_crl(const std::vector<Bytes>& revoked, UnixTime this_update,
                       UnixTime next_update) const {
  return make_crl(tdx::kPlatformCaCn, platform_key_.get(), revoked, this_update, next_update);
}

std::string FakeIntel::tcb_info_response(const json& tcb_info) const {
  return signed_response("tcbInfo", tcb_info, signing_key_.get());
}

std::string FakeIntel::qe_identity_response(const json& qe_identity) const {
  return signed_response("enclaveIdentity", qe_identity, signing_key_.get());
}

std::string FakeIntel::signing_chain_pem() const {
  return pem_of(tcb_signing_) + pem_of(root_);
}

attestation::tdx::TdxCollateral FakeIntel::collateral(UnixTime from, UnixTime to,
                                                      const json& tcb_levels,
                                                      const json& module_identities,
                                                      const json& qe_levels) const {
  const std::string zero48(96, '0');
  json levels = tcb_levels;
  if (levels.is_null()) {
    levels =
        json::array({tcb_level_json({3, 3, 2, 2, 4, 1, 0, 5}, 13, {5, 0, 3}, "UpToDate"),
                     tcb_level_json({2, 2, 2, 2, 3, 1, 0, 5}, 13, {5, 0, 2}, "OutOfDate",
                                    "2024-03-13T00:00:00Z", {"INTEL-SA-01036", "INTEL-SA-01099"})});
  }
  json modules = module_identities;
  if (modules.is_null()) {
    json module_levels = json::array(
        {{{"tcb", {{"isvsvn", 6}}}, {"tcbDate", "2024-11-13T00:00:00Z"}, {"tcbStatus", "UpToDate"}},
         {{"tcb", {{"isvsvn", 4}}},
          {"tcbDate", "2024-03-13T00:00:00Z"},
          {"tcbStatus", "OutOfDate"},
          {"advisoryIDs", {"INTEL-SA-01099"}}}});
    modules = json::array({{{"id", "TDX_01"},
                            {"mrsigner", zero48},
                            {"attributes", "0000000000000000"},
                            {"attributesMask", "FFFFFFFFFFFFFFFF"},
                            {"tcbLevels", module_levels}}});
  }
  json qe = qe_levels;
  if (qe.is_null()) {
    qe = json::array({{{"tcb", {{"isvsvn", 4}}},
                       {"tcbDate", "2024-11-13T00:00:00Z"},
                       {"tcbStatus", "UpToDate"}}});
  }
  json tcb_info = {{"id", "TDX"},
                   {"version", 3},
                   {"issueDate", format_rfc3339(from)},
                   {"nextUpdate", format_rfc3339(to)},
                   {"fmspc", "90C06F000000"},
                   {"pceId", "0000"},
                   {"tcbType", 0},
                   {"tcbEvaluationDataNumber", 18},
                   {"tdxModule",
                    {{"mrsigner", zero48},
                     {"attributes", "0000000000000000"},
                     {"attributesMask", "FFFFFFFFFFFFFFFF"}}},
                   {"tdxModuleIdentities", modules},
                   {"tcbLevels", levels}};
  json qe_identity = {
      {"id", "TD_QE"},
      {"version", 2},
      {"issueDate", format_rfc3339(from)},
      {"nextUpdate", format_rfc3339(to)},
      {"tcbEvaluationDataNumber", 18},
      {"miscselect", "00000000"},
      {"miscselectMask", "FFFFFFFF"},
      {"attributes", "11000000000000000000000000000000"},
      {"attributesMask", "FBFFFFFFFFFFFFFF0000000000000000"},
      {"mrsigner", "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5"},
      {"isvprodid", 2},
      {"tcbLevels", qe}};
  attestation::tdx::TdxCollateral out;
  auto add = [&](const std::string& data, const std::string& name) {
    auto ok = attestation::tdx::add_collateral(as_bytes(data), name, out);
    EXPECT_TRUE(ok) << name << ": " << ok.error().message();
  };
  add(tcb_info_response(tcb_info), "fake tcb info");
  add(qe_identity_response(qe_identity), "fake qe identity");
  add(signing_chain_pem(), "fake signing chain");
  out.crls.push_back({root_crl({}, from, to), "fake root crl"});
  out.crls.push_back({pck_crl({}, from, to), "fake pck crl"});
  return out;
}

}  // namespace cloister::testing
