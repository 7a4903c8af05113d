#include <gtest/gtest.h>

#include "cloister/attestation/tdx/pck.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "snp_facts.h"
#include "tdx_facts.h"

namespace cloister::attestation::tdx {
namespace {

using cloister::testing::tdx_facts;
using cloister::testing::tdx_vector;

std::string hex(ByteView b) {
  return to_hex(b);
}

std::string le64_hex(std::uint64_t v) {
  std::array<std::uint8_t, 8> b{};
  store_le64(b, 0, v);
  return to_hex(b);
}

// Every quote decodes into exactly the header, TD report and QE report fields the facts list.
TEST(TdxQuote, EveryQuoteDecodesToTheFacts) {
  CLOISTER_REQUIRE_TDX_FACTS();
  int checked = 0;
  for (const auto& f : tdx_facts()["quotes"]) {
    SCOPED_TRACE(f["file"].get<std::string>());
    const Bytes bytes = tdx_vector(f["file"]);
    ASSERT_EQ(hex(sha256(bytes)), f["sha256"]);
    auto q = parse_tdx_quote(bytes);
    ASSERT_TRUE(q) << q.error().message();
    EXPECT_TRUE(looks_like_tdx_quote(bytes));
    EXPECT_EQ(q->header.version, f["version"].get<int>());
    EXPECT_EQ(q->header.att_key_type, f["att_key_type"].get<int>());
    EXPECT_EQ(q->header.tee_type, std::stoul(f["tee_type"].get<std::string>(), nullptr, 16));
    if (f["body_type"].is_null()) {
      EXPECT_FALSE(q->body_type.has_value());
    } else {
      EXPECT_EQ(q->body_type, f["body_type"].get<int>());
    }
    EXPECT_EQ(hex(q->header.qe_vendor_id), f["qe_vendor_id"]);
    EXPECT_EQ(q->header.qe_vendor_id == kIntelQeVendorId, f["qe_vendor_is_intel"].get<bool>());
    EXPECT_EQ(hex(q->header.reserved), f["header_bytes_8_11"]);
    EXPECT_EQ(hex(q->header.user_data), f["user_data"]);
    EXPECT_EQ(q->signed_size, f["signed_region_len"].get<std::size_t>());
    EXPECT_EQ(q->signature_data_len, f["signature_data_len"].get<std::uint32_t>());
    EXPECT_EQ(q->trailing_bytes, f["trailing_bytes_after_signature_data"].get<std::size_t>());
    EXPECT_EQ(q->raw.size() + q->trailing_bytes, f["size"].get<std::size_t>());
    EXPECT_EQ(q->cert_data_type, f["outer_cert_data_type"].get<int>());
    EXPECT_EQ(q->pck_cert_data_type, f["inner_cert_data_type"].get<int>());
    EXPECT_EQ(hex(q->qe_auth_data), f["qe_auth_data"]);

    const auto& t = f["td_report"];
    const TdReport& r = q->td_report;
    EXPECT_EQ(hex(r.tee_tcb_svn), t["tee_tcb_svn"]);
    EXPECT_EQ(hex(r.mr_seam), t["mr_seam"]);
    EXPECT_EQ(hex(r.mr_signer_seam), t["mr_signer_seam"]);
    EXPECT_EQ(hex(r.seam_attributes), t["seam_attributes"]);
    EXPECT_EQ(le64_hex(r.td_attributes), t["td_attributes"]);
    EXPECT_EQ(le64_hex(r.xfam), t["xfam"]);
    EXPECT_EQ(hex(r.mr_td), t["mr_td"]);
    EXPECT_EQ(hex(r.mr_config_id), t["mr_config_id"]);
    EXPECT_EQ(hex(r.mr_owner), t["mr_owner"]);
    EXPECT_EQ(hex(r.mr_owner_config), t["mr_owner_config"]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(hex(r.rtmr[i]), t["rtmr" + std::to_string(i)]);
    EXPECT_EQ(hex(r.report_data), t["report_data"]);
    EXPECT_EQ(r.tee_tcb_svn2.has_value(), t.contains("tee_tcb_svn2"));
    if (r.tee_tcb_svn2) {
      EXPECT_EQ(hex(*r.tee_tcb_svn2), t["tee_tcb_svn2"]);
      EXPECT_EQ(hex(*r.mr_service_td), t["mr_servicetd"]);
    }
    EXPECT_FALSE(r.debug());

    const auto& e = f["qe_report"];
    const QeReport& qe = q->qe_report;
    EXPECT_EQ(hex(qe.cpu_svn), e["cpu_svn"]);
    EXPECT_EQ(qe.misc_select, e["miscselect"].get<std::uint32_t>());
    EXPECT_EQ(hex(qe.attributes), e["attributes"]);
    EXPECT_EQ(hex(qe.mr_enclave), e["mr_enclave"]);
    EXPECT_EQ(hex(qe.mr_signer), e["mr_signer"]);
    EXPECT_EQ(qe.isv_prod_id, e["isv_prod_id"].get<int>());
    EXPECT_EQ(qe.isv_svn, e["isv_svn"].get<int>());
    EXPECT_EQ(hex(qe.report_data), e["report_data"]);
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

// The PCK chain each quote carries, and its leaf's SGX extensions.
TEST(TdxQuote, PckChainsAndExtensionsMatchTheFacts) {
  CLOISTER_REQUIRE_TDX_FACTS();
  for (const auto& f : tdx_facts()["quotes"]) {
    SCOPED_TRACE(f["file"].get<std::string>());
    auto q = parse_tdx_quote(tdx_vector(f["file"]));
    ASSERT_TRUE(q);
    EXPECT_EQ(f["pck_chain_encoding"], "PEM");
    std::string pem(q->pck_cert_data.begin(), q->pck_cert_data.end());
    EXPECT_EQ(hex(as_bytes(pem.substr(pem.rfind("-----") + 5))), f["pck_chain_trailing_bytes"]);
    auto certs = parse_pem_chain(q->pck_cert_data);
    ASSERT_TRUE(certs) << certs.error().message();
    ASSERT_EQ(certs->size(), 3u);
    const char* order[] = {"leaf", "intermediate", "root"};
    for (int i = 0; i < 3; ++i) EXPECT_EQ(f["pck_chain_order"][i], order[i]);
    auto chain = identify_pck_chain(*certs);
    ASSERT_TRUE(chain) << chain.error().message();
    const Certificate* got[] = {&chain->leaf, &chain->intermediate, &chain->root};
    for (int i = 0; i < 3; ++i) {
      const auto& want = f["pck_chain"][order[i]];
      const std::string subject = want["subject"];
      EXPECT_EQ(got[i]->subject_cn(), subject.substr(subject.rfind("CN=") + 3));
      EXPECT_EQ(got[i]->serial_hex(), want["serial"]);
      EXPECT_EQ(got[i]->not_before(), *parse_rfc3339(want["not_before"].get<std::string>()));
      EXPECT_EQ(got[i]->not_after(), *parse_rfc3339(want["not_after"].get<std::string>()));
      EXPECT_EQ(hex(got[i]->fingerprint()), want["sha256"]);
    }
    EXPECT_EQ(hex(got[2]->fingerprint()),
              "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
    EXPECT_EQ(chain->root.public_key().spki_der(), intel_sgx_root_key().spki_der());
    Checks checks;
    check_pck_chain(*chain, intel_sgx_root_key(), checks);
    EXPECT_TRUE(checks.passed()) << checks.failures().front();

    const auto& x = f["pck_sgx_extensions"];
    EXPECT_EQ(to_string(chain->ca), x["ca"]);
    auto ext = pck_extensions(chain->leaf);
    ASSERT_TRUE(ext) << ext.error().message();
    EXPECT_EQ(hex(ext->ppid), x["ppid"]);
    for (int i = 0; i < 16; ++i)
      EXPECT_EQ(ext->tcb_components[i], x["tcb_comp_svns"][i].get<int>());
    EXPECT_EQ(ext->pcesvn, x["pcesvn"].get<int>());
    EXPECT_EQ(hex(ext->cpusvn), x["cpusvn"]);
    EXPECT_EQ(hex(ext->pce_id), x["pceid"]);
    EXPECT_EQ(hex(ext->fmspc), x["fmspc"]);
    EXPECT_EQ(static_cast<int>(ext->sgx_type), x["sgx_type"].get<int>());
    ASSERT_TRUE(ext->platform_instance_id.has_value());
    EXPECT_EQ(hex(*ext->platform_instance_id), x["platform_instance_id"]);
    ASSERT_TRUE(ext->configuration.has_value());
    const auto& config = x["configuration"];
    EXPECT_EQ(*ext->configuration->dynamic_platform, config["1.2.840.113741.1.13.1.7.1"] == "ff");
    EXPECT_EQ(*ext->configuration->cached_keys, config["1.2.840.113741.1.13.1.7.2"] == "ff");
    EXPECT_EQ(*ext->configuration->smt_enabled, config["1.2.840.113741.1.13.1.7.3"] == "ff");
  }
}

// Every strict prefix of a quote is rejected with the field and offset that ran short.
TEST(TdxQuote, EveryTruncationIsRejectedNamingTheField) {
  CLOISTER_REQUIRE_TDX_FACTS();
  for (const char* file : {"gtg/quote_v4_spr_e4.dat", "gtg/quote_v5_tdx15.dat"}) {
    SCOPED_TRACE(file);
    const Bytes bytes = tdx_vector(file);
    auto full = decode_tdx_quote(bytes);
    ASSERT_TRUE(full);
    const std::size_t size = full->raw.size();
    for (std::size_t n = 0; n < size; ++n) {
      auto q = decode_tdx_quote(ByteView(bytes).first(n));
      ASSERT_FALSE(q) << "prefix of " << n << " bytes decoded";
      const std::string& m = q.error().message();
      ASSERT_TRUE(m.find("needs") != std::string::npos || m.find("declares") != std::string::npos)
          << n << ": " << m;
    }
  }
  auto q = decode_tdx_quote(ByteView(tdx_vector("gtg/quote_v4_spr_e4.dat")).first(600));
  EXPECT_EQ(q.error().message(), "TD report 1.0 at offset 48: needs 584 bytes, only 552 left");
  auto sig = decode_tdx_quote(ByteView(tdx_vector("gtg/quote_v4_spr_e4.dat")).first(700));
  EXPECT_EQ(sig.error().message(),
            "signature_data_len at offset 632: declares 4299 bytes, only 64 follow");
  auto inner = decode_tdx_quote(ByteView(tdx_vector("gtg/quote_v4_spr_e4.dat")).first(636 + 200));
  EXPECT_EQ(inner.error().message(),
            "signature_data_len at offset 632: declares 4299 bytes, only 200 follow");
}

class TdxQuoteLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cloister::testing::tdx_facts().is_null())
      GTEST_SKIP() << cloister::testing::vectors_missing_message("tdx/expected.json");
    v4 = tdx_vector("gtg/quote_v4_spr_e4.dat");
    v5 = tdx_vector("gtg/quote_v5_tdx15.dat");
  }
  static std::string error_of(const Bytes& b) {
    auto q = decode_tdx_quote(b);
    return q ? "decoded" : q.error().message();
  }
  static std::vector<std::string> problems_of(const Bytes& b) {
    auto q = decode_tdx_quote(b);
    EXPECT_TRUE(q) << q.error().message();
    return q ? q->format_problems : std::vector<std::string>{};
  }
  Bytes v4, v5;
};

TEST_F(TdxQuoteLayout, UnknownVersionsAndBodiesAreRejected) {
  Bytes b = v4;
  store_le16(b, 0, 3);
  EXPECT_EQ(error_of(b), "version: expected 4 or 5 (TDX quote), found 3");
  b = v4;
  store_le32(b, 4, 0);
  EXPECT_EQ(error_of(b),
            "tee_type: expected 0x00000081 (TDX), found 0x00000000; a v4 quote for another TEE has "
            "another layout");
  b = v5;
  store_le16(b, 48, 1);
  EXPECT_EQ(error_of(b),
            "body_type: expected 2 (TD report 1.0) or 3 (TD report 1.5), found 1 (an SGX enclave "
            "quote)");
  b = v5;
  store_le32(b, 50, 584);
  EXPECT_EQ(error_of(b), "body_size: expected 648 for body type 3 (TD report 1.5), found 584");
  b = v4;
  store_le16(b, 632 + 4 + 128, 5);
  EXPECT_EQ(error_of(b),
            "certification data type: expected 6 (QE report certification data), found 5 (PCK "
            "certificate chain)");
  b = v4;
  store_le32(b, 632 + 4 + 130, 5000);
  EXPECT_EQ(error_of(b),
            "certification data size at offset 766: declares 5000 bytes, only 4165 left in the "
            "signature data");
  b = v4;
  store_le16(b, 636 + 134 + 448, 40000);
  EXPECT_EQ(error_of(b),
            "QE report certification data at quote offset 770: QE auth data at offset 450: needs "
            "40000 bytes, only 3715 left");
}

TEST_F(TdxQuoteLayout, ViolationsThatKeepTheLayoutAreRecorded) {
  EXPECT_TRUE(problems_of(v4).empty());
  EXPECT_TRUE(problems_of(v5).empty());
  Bytes b = v4;
  store_le16(b, 2, 3);
  EXPECT_EQ(problems_of(b),
            std::vector<std::string>{"att_key_type: expected 2 (ECDSA P-256), found 3"});
  b = v5;
  store_le32(b, 4, 0);
  EXPECT_EQ(problems_of(b),
            std::vector<std::string>{"tee_type: expected 0x00000081 (TDX) for a TD report body, "
                                     "found 0x00000000"});
  // The inner certification data is type 3 (encrypted PPID): no chain to check.
  b = v4;
  const std::size_t inner = 636 + 134 + 384 + 64 + 2 + 32;
  store_le16(b, inner, 3);
  EXPECT_EQ(problems_of(b),
            std::vector<std::string>{
                "PCK certification data type: expected 5 (PCK certificate chain), found 3 (PPID "
                "encrypted with RSA-3072-OAEP); the PCK chain is not embedded and cannot be "
                "checked"});
  // signature_data_len larger than what the signature data holds (the trailing bytes become
  // unused signature data).
  b = v4;
  store_le32(b, 632, 4299 + 39);
  auto q = decode_tdx_quote(b);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->trailing_bytes, 0u);
  EXPECT_EQ(q->format_problems,
            std::vector<std::string>{
                "signature data: 39 unused bytes after the certification data (at offset 4935)"});
  EXPECT_FALSE(parse_tdx_quote(b));
}

// encode_tdx_quote() is the exact inverse of the decoder on every quote in the shared vectors
// (tdx/MANIFEST.md: three go-tdx-guest and two dcap-qvl quotes; tdx/dstack/MANIFEST.md: two
// dstack quotes). Trailing bytes after the signature data are not part of the quote.
TEST(TdxQuoteWriter, ReproducesEveryRealQuoteByteForByte) {
  CLOISTER_REQUIRE_TDX_FACTS();
  std::vector<std::string> files;
  for (const auto& f : tdx_facts()["quotes"]) files.push_back(f["file"]);
  for (const char* dstack : {"quote-report", "tdx-lite-getquote"})
    files.push_back(std::string("dstack/derived/") + dstack + "/quote.bin");
  ASSERT_EQ(files.size(), 7u);
  for (const auto& file : files) {
    SCOPED_TRACE(file);
    const Bytes bytes = tdx_vector(file);
    auto q = parse_tdx_quote(bytes);
    ASSERT_TRUE(q) << q.error().message();
    auto encoded = encode_tdx_quote(*q);
    ASSERT_TRUE(encoded) << encoded.error().message();
    EXPECT_EQ(*encoded,
              Bytes(bytes.begin(), bytes.end() - static_cast<std::ptrdiff_t>(q->trailing_bytes)));
  }
}

// A quote whose every field holds a distinct value.
TdxQuote constructed_quote(std::uint16_t version, std::optional<std::uint16_t> body_type) {
  TdxQuote q;
  q.header = {version, kAttKeyTypeEcdsaP256, kTeeTypeTdx, {1, 2, 3, 4}, kIntelQeVendorId, {}};
  q.header.user_data.fill(0x21);
  q.body_type = body_type;
  TdReport& r = q.td_report;
  r.tee_tcb_svn = {6, 1, 3};
  r.mr_seam.fill(0x31);
  r.mr_signer_seam.fill(0x32);
  r.seam_attributes.fill(0x33);
  r.td_attributes = 0x10000000;
  r.xfam = 0x61ae7;
  r.mr_td.fill(0x34);
  r.mr_config_id.fill(0x35);
  r.mr_owner.fill(0x36);
  r.mr_owner_config.fill(0x37);
  for (std::size_t i = 0; i < 4; ++i) r.rtmr[i].fill(static_cast<std::uint8_t>(0x40 + i));
  r.report_data.fill(0x38);
  if (body_type == kBodyTypeTdReport15) {
    r.tee_tcb_svn2 = std::array<std::uint8_t, 16>{7, 1, 3};
    r.mr_service_td = Bytes48{};
    r.mr_service_td->fill(0x39);
  }
  q.signature.fill(0x51);
  q.attestation_key.fill(0x52);
  q.cert_data_type = kCertDataQeReport;
  QeReport& qe = q.qe_report;
  qe.cpu_svn.fill(0x61);
  qe.misc_select = 0x62636465;
  qe.attributes.fill(0x66);
  qe.mr_enclave.fill(0x67);
  qe.mr_signer.fill(0x68);
  qe.isv_prod_id = 2;
  qe.isv_svn = 8;
  qe.report_data.fill(0x69);
  qe.raw = encode_qe_report(qe);
  q.qe_report_signature.fill(0x6a);
  q.qe_auth_data = Bytes(32, 0x6b);
  q.pck_cert_data_type = kCertDataPckChain;
  q.pck_cert_data = Bytes(300, 0x6c);
  return q;
}

TEST(TdxQuoteWriter, ConstructedQuotesDecodeToTheSameValue) {
  const std::pair<std::uint16_t, std::optional<std::uint16_t>> layouts[] = {
      {4, std::nullopt}, {5, kBodyTypeTdReport10}, {5, kBodyTypeTdReport15}};
  for (const auto& [version, body_type] : layouts) {
    SCOPED_TRACE(version * 10 + body_type.value_or(0));
    const TdxQuote q = constructed_quote(version, body_type);
    auto bytes = encode_tdx_quote(q);
    ASSERT_TRUE(bytes) << bytes.error().message();
    auto d = parse_tdx_quote(*bytes);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->raw, *bytes);
    EXPECT_EQ(d->header, q.header);
    EXPECT_EQ(d->body_type, q.body_type);
    EXPECT_EQ(d->td_report, q.td_report);
    EXPECT_EQ(d->signature, q.signature);
    EXPECT_EQ(d->attestation_key, q.attestation_key);
    EXPECT_EQ(d->cert_data_type, q.cert_data_type);
    EXPECT_EQ(d->qe_report, q.qe_report);
    EXPECT_EQ(d->qe_report_signature, q.qe_report_signature);
    EXPECT_EQ(d->qe_auth_data, q.qe_auth_data);
    EXPECT_EQ(d->pck_cert_data_type, q.pck_cert_data_type);
    EXPECT_EQ(d->pck_cert_data, q.pck_cert_data);
    EXPECT_EQ(d->signed_size, body_type == kBodyTypeTdReport15 ? 702u : version == 5 ? 638u : 632u);
    EXPECT_EQ(d->signature_data_len, 64u + 64 + 6 + 384 + 64 + 2 + 32 + 6 + 300);
  }
}

TEST(TdxQuoteWriter, ValuesNoQuoteCanHoldAreRejected) {
  auto error_of = [](const TdxQuote& q) { return encode_tdx_quote(q).error().message(); };
  TdxQuote q = constructed_quote(3, std::nullopt);
  EXPECT_EQ(error_of(q), "version: expected 4 or 5 (TDX quote), found 3");
  q = constructed_quote(4, kBodyTypeTdReport10);
  EXPECT_EQ(error_of(q), "body_type: a v4 quote has none, found 2");
  q = constructed_quote(4, std::nullopt);
  q.header.tee_type = kTeeTypeSgx;
  EXPECT_EQ(error_of(q),
            "tee_type: a v4 quote this library writes is a TDX quote (0x00000081), found "
            "0x00000000");
  q = constructed_quote(5, std::nullopt);
  EXPECT_EQ(error_of(q), "body_type: expected 2 (TD report 1.0) or 3 (TD report 1.5), found none");
  q = constructed_quote(5, kBodyTypeTdReport10);
  q.td_report.tee_tcb_svn2 = std::array<std::uint8_t, 16>{};
  EXPECT_EQ(error_of(q), "TEE_TCB_SVN2/MRSERVICETD: a TD report 1.0 has neither");
  q = constructed_quote(4, std::nullopt);
  q.qe_auth_data.resize(65536);
  EXPECT_EQ(error_of(q), "QE auth data: at most 65535 bytes (u16 size), found 65536");
}

// The QE report keeps the fields this library does not decode.
TEST(TdxQuoteWriter, QeReportFieldsOverRawBytes) {
  QeReport qe;
  qe.raw.fill(0xee);
  qe.isv_svn = 0x0102;
  const auto bytes = encode_qe_report(qe);
  EXPECT_EQ(load_le16(bytes, qe_offset::kIsvSvn), 0x0102);
  EXPECT_EQ(bytes[qe_offset::kIsvSvn + 2], 0xee);  // CONFIGSVN
  EXPECT_EQ(bytes[qe_offset::kMrEnclave], 0x00);
}

TEST(TdxQuote, SnpReportsAreNotTdxQuotes) {
  CLOISTER_REQUIRE_SNP_FACTS();
  for (const auto& [file, unused] : cloister::testing::snp_facts()["reports"].items()) {
    EXPECT_FALSE(looks_like_tdx_quote(cloister::testing::snp_report_bytes(file))) << file;
  }
  EXPECT_FALSE(looks_like_tdx_quote(Bytes{4, 0, 2}));
}

TEST(TdxQuote, PemChainMustBeOnlyCertificates) {
  EXPECT_EQ(parse_pem_chain(as_bytes("")).error().message(), "PCK chain: no PEM CERTIFICATE block");
  EXPECT_EQ(parse_pem_chain(as_bytes("junk")).error().message(),
            "PCK chain: unexpected data at byte 0 (expected a PEM CERTIFICATE block)");
  EXPECT_EQ(parse_pem_chain(as_bytes("-----BEGIN CERTIFICATE-----\nAAAA\n")).error().message(),
            "PCK chain: PEM block 1 has no END line");
}

}  // namespace
}  // namespace cloister::attestation::tdx

namespace cloister::attestation::tdx {
namespace {

// The SGX extension of a real PCK leaf, mutated byte by byte: strict DER, known members only.
TEST(TdxPckExtensions, MalformedMembersAreRejectedByName) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto q = parse_tdx_quote(tdx_vector("gtg/quote_v4_spr_e4.dat"));
  ASSERT_TRUE(q);
  auto chain = identify_pck_chain(*parse_pem_chain(q->pck_cert_data));
  ASSERT_TRUE(chain);
  const Bytes ext = *chain->leaf.extension_value(oid::kSgxExtension);
  ASSERT_TRUE(parse_pck_extensions(ext));
  auto error_of = [](const Bytes& b) {
    auto e = parse_pck_extensions(b);
    return e ? "parsed" : e.error().message();
  };
  // Offsets from `openssl asn1parse` of this extension: the SGX type ENUMERATED value at 451,
  // TCB component 5's OID last byte at 142 and its INTEGER value at 145.
  Bytes type = ext;
  ASSERT_EQ(type[451], 0x01);
  type[451] = 0x03;
  EXPECT_EQ(error_of(type), "SGX type: expected at most 2, found 3");
  Bytes unknown = ext;
  ASSERT_EQ(unknown[142], 0x05);
  unknown[142] = 0x13;
  EXPECT_EQ(error_of(unknown), "SGX extension TCB: unknown member 1.2.840.113741.1.13.1.2.19");
  Bytes duplicate = ext;
  duplicate[142] = 0x04;
  EXPECT_EQ(error_of(duplicate), "SGX extension TCB: duplicate member 1.2.840.113741.1.13.1.2.4");
  Bytes negative = ext;
  ASSERT_EQ(negative[145], 0x02);
  negative[145] = 0x82;
  EXPECT_EQ(error_of(negative), "SGX TCB COMP05 SVN: negative INTEGER");
  EXPECT_EQ(error_of(Bytes(ext.begin(), ext.begin() + 100)),
            "SGX extension at offset 0: length 550 exceeds the 96 bytes left");
  Bytes trailing = ext;
  trailing.push_back(0);
  EXPECT_EQ(error_of(trailing), "SGX extension: unexpected data after the SEQUENCE");
}

}  // namespace
}  // namespace cloister::attestation::tdx
