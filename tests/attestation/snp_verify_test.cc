#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/kds.h"
#include "cloister/attestation/snp/verify.h"
#include "cloister/common/hex.h"
#include "fake_amd.h"
#include "snp_facts.h"

namespace cloister::attestation::snp {
namespace {

using cloister::testing::kSnpVectorTime;
using cloister::testing::read_vector;
using cloister::testing::snp_facts;
using cloister::testing::snp_report_bytes;
using cloister::testing::vector_path;

std::vector<Sourced<Certificate>> certs_from(const std::string& file) {
  std::vector<Sourced<Certificate>> out;
  auto path = vector_path("snp/" + file);
  if (!path) return out;
  auto certs = parse_certificates(read_vector(*path));
  EXPECT_TRUE(certs) << file;
  if (certs)
    for (auto& c : *certs) out.push_back({c, file});
  return out;
}

Sourced<Crl> crl_from(const std::string& file) {
  return {*Crl::parse(read_vector(*vector_path("snp/" + file))), file};
}

std::string vek_file_of(const nlohmann::json& f) {
  return f["signature_verifies_with"].items().begin().key();
}

SnpEvidence evidence_for(const std::string& report_file) {
  const auto& f = snp_facts()["reports"][report_file];
  SnpEvidence e;
  e.report = snp_report_bytes(report_file);
  e.certificates = certs_from(vek_file_of(f));
  return e;
}

SnpVerifyOptions at_vector_time() {
  SnpVerifyOptions o;
  o.time = kSnpVectorTime;
  return o;
}

CheckStatus status_of(const SnpVerification& v, const std::string& name) {
  const Check* c = v.checks.find(name);
  EXPECT_NE(c, nullptr) << "no check " << name;
  return c ? c->status : CheckStatus::kSkip;
}

std::string detail_of(const SnpVerification& v, const std::string& name) {
  const Check* c = v.checks.find(name);
  return c ? c->detail : "no check " + name;
}

std::string dump(const Checks& checks) {
  std::string out;
  for (const auto& c : checks.all())
    out += c.name + " " + std::string(to_string(c.status)) + ": " + c.detail + "\n";
  return out;
}

// Every real report verifies with its VEK at a time inside the certificates' validity.
TEST(SnpVerify, EveryRealReportVerifies) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpVerifier verifier;
  for (const auto& [file, f] : snp_facts()["reports"].items()) {
    SCOPED_TRACE(file);
    auto v = verifier.verify(evidence_for(file), at_vector_time());
    EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
    ASSERT_TRUE(v.product.has_value());
    EXPECT_EQ(product_name(*v.product), f["product"]);
    for (const char* name : {"snp.report.format", "snp.product", "snp.vek", "snp.chain.ark",
                             "snp.chain.ica", "snp.chain.vek", "snp.chain.validity",
                             "snp.signature", "snp.vek.tcb", "snp.tcb.consistency"}) {
      EXPECT_EQ(status_of(v, name), CheckStatus::kPass) << name << ": " << detail_of(v, name);
    }
    const bool vcek = f["signer_info_decoded"]["signing_key"] == "VCEK";
    EXPECT_EQ(status_of(v, "snp.vek.identity"), CheckStatus::kPass);
    EXPECT_EQ(v.vek_kind, vcek ? VekKind::kVcek : VekKind::kVlek);
    EXPECT_EQ(status_of(v, "snp.crl"), CheckStatus::kSkip);
    if (vcek) {
      EXPECT_EQ(v.vcek_url, f["kds_vcek_url_for_this_report"].get<std::string>());
    }
  }
}

// v2 reports take the product from the VCEK; v3+ from CPUID even when the VCEK says "Milan-B0"
// for a stepping-1 chip (google/go-sev-guest#115).
TEST(SnpVerify, ProductSources) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpVerifier verifier;
  auto v2 = verifier.verify(evidence_for("milan_v2_vcek_report.gosevguest.bin"), at_vector_time());
  EXPECT_NE(v2.checks.find("snp.product")->detail.find("VEK productName"), std::string::npos);
  auto v3 = verifier.verify(evidence_for("milan_v3_vcek_report.oak.bin"), at_vector_time());
  EXPECT_EQ(v3.checks.find("snp.product")->detail,
            "from CPUID family 0x19 model 0x01 stepping 0x01");
  EXPECT_EQ(v3.vek_extensions->product_name, "Milan-B0");

  // v2 without a VCEK and without --product: the product is unknown.
  SnpEvidence bare;
  bare.report = snp_report_bytes("milan_v2_vcek_report.gosevguest.bin");
  auto unknown = verifier.verify(bare, at_vector_time());
  EXPECT_EQ(status_of(unknown, "snp.product"), CheckStatus::kFail);
  EXPECT_EQ(detail_of(unknown, "snp.product"),
            "a v2 report carries no CPUID fields; pass --product or supply the VCEK");
  // --product contradicting CPUID.
  auto opts = at_vector_time();
  opts.product = Product::kGenoa;
  auto contradicted = verifier.verify(evidence_for("milan_v3_vcek_report.oak.bin"), opts);
  EXPECT_EQ(status_of(contradicted, "snp.product"), CheckStatus::kFail);
}

TEST(SnpVerify, ReportPlusCertificateTable) {
  CLOISTER_REQUIRE_VECTOR(path, "snp/CONSTRUCTED_milan_v2_report_plus_certtable.bin");
  Bytes blob = read_vector(path);
  SnpEvidence e;
  e.report.assign(blob.begin(), blob.begin() + kReportSize);
  auto table = parse_cert_table(ByteView(blob).subspan(kReportSize));
  ASSERT_TRUE(table) << table.error().message();
  for (const auto& entry : *table)
    e.certificates.push_back({*Certificate::from_der(entry.data), "table"});
  SnpVerifier verifier;
  auto v = verifier.verify(e, at_vector_time());
  EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
  EXPECT_EQ(v.checks.find("snp.vek")->found.find("SEV-VCEK"), 0u);
}

// Any single-bit change in the signed region breaks the signature.
TEST(SnpVerify, EverySignedBitFlipFailsTheSignature) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpVerifier verifier;
  for (const char* file : {"milan_v2_vcek_report.gosevguest.bin", "turin_v5_vcek_report.oak.bin"}) {
    SCOPED_TRACE(file);
    SnpEvidence e = evidence_for(file);
    const Bytes original = e.report;
    int flips = 0;
    for (std::size_t byte = 0; byte < kSignedSize; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        e.report = original;
        e.report[byte] ^= static_cast<std::uint8_t>(1u << bit);
        auto v = verifier.verify(e, at_vector_time());
        ASSERT_FALSE(v.checks.passed()) << "byte " << byte << " bit " << bit;
        ASSERT_EQ(status_of(v, "snp.signature"), CheckStatus::kFail)
            << "byte " << byte << " bit " << bit;
        ++flips;
      }
    }
    EXPECT_EQ(flips, 0x2A0 * 8);
  }
}

TEST(SnpVerify, AnotherChipsVcekIsRejected) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpEvidence e;
  e.report = snp_report_bytes("milan_v3_vcek_report.oak.bin");
  e.certificates = certs_from("milan_vcek.gosevguest.der");
  auto v = SnpVerifier().verify(e, at_vector_time());
  EXPECT_FALSE(v.checks.passed());
  EXPECT_EQ(status_of(v, "snp.signature"), CheckStatus::kFail);
  EXPECT_EQ(detail_of(v, "snp.signature"),
            "report signature does not verify with SEV-VCEK (the report was altered, or signed by "
            "another chip or TCB)");
  EXPECT_EQ(detail_of(v, "snp.vek.identity"), "the VCEK belongs to another chip");
  EXPECT_EQ(status_of(v, "snp.vek.tcb"), CheckStatus::kFail);
}

TEST(SnpVerify, GenoaChainForMilanReportIsRejected) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpEvidence e = evidence_for("milan_v3_vcek_report.oak.bin");
  for (auto& c : certs_from("kds_vcek_cert_chain_genoa.pem")) e.certificates.push_back(c);
  auto v = SnpVerifier().verify(e, at_vector_time());
  EXPECT_FALSE(v.checks.passed());
  EXPECT_EQ(status_of(v, "snp.chain.product"), CheckStatus::kFail);
  EXPECT_EQ(v.checks.find("snp.chain.product")->found, "ARK-Genoa, SEV-Genoa");
  // And a Genoa VCEK offered for a Milan report.
  SnpEvidence genoa_vek;
  genoa_vek.report = snp_report_bytes("milan_v3_vcek_report.oak.bin");
  genoa_vek.certificates = certs_from("genoa_vcek.oak.der");
  auto w = SnpVerifier().verify(genoa_vek, at_vector_time());
  EXPECT_EQ(detail_of(w, "snp.product"),
            "the VEK was issued for another product (cross-product chain)");
}

TEST(SnpVerify, TruncatedReportIsRejected) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpEvidence e = evidence_for("genoa_v5_vcek_report.oak.bin");
  e.report.resize(1000);
  auto v = SnpVerifier().verify(e, at_vector_time());
  EXPECT_FALSE(v.checks.passed());
  EXPECT_FALSE(v.report.has_value());
  EXPECT_EQ(detail_of(v, "snp.report.format"),
            "report is 1000 bytes, expected 1184 (SEV-SNP ATTESTATION_REPORT)");
}

TEST(SnpVerify, ExpiredVlekFailsAtTodaysDate) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpVerifyOptions today;
  today.time = 1763683200 + 365 * 86400;  // 2026-11-21
  auto v = SnpVerifier().verify(evidence_for("milan_v3_vlek_report.trustee.bin"), today);
  EXPECT_EQ(status_of(v, "snp.chain.validity"), CheckStatus::kFail);
  EXPECT_EQ(status_of(v, "snp.signature"), CheckStatus::kPass);
}

TEST(SnpVerify, RealCrls) {
  CLOISTER_REQUIRE_SNP_FACTS();
  SnpVerifier verifier;
  SnpEvidence milan = evidence_for("milan_v3_vcek_report.oak.bin");
  milan.crls.push_back(crl_from("kds_vcek_crl_milan.openpcc.der"));
  auto ok = verifier.verify(milan, at_vector_time());
  EXPECT_TRUE(ok.checks.passed()) << dump(ok.checks);
  EXPECT_EQ(status_of(ok, "snp.crl"), CheckStatus::kPass);
  EXPECT_EQ(ok.checks.find("snp.revocation")->found,
            "SEV-Milan 0x10001, SEV-VCEK 0x0 against 0 revoked serials");

  SnpEvidence genoa = evidence_for("genoa_v5_vcek_report.oak.bin");
  genoa.crls.push_back(crl_from("kds_vcek_crl_genoa.openpcc.pem"));
  auto g = verifier.verify(genoa, at_vector_time());
  EXPECT_TRUE(g.checks.passed()) << dump(g.checks);
  EXPECT_EQ(g.checks.find("snp.revocation")->found,
            "SEV-Genoa 0x20002, SEV-VCEK 0x0 against 1 revoked serials");

  // Today both CRLs are past nextUpdate: stale, which go-sev-guest would accept silently.
  SnpVerifyOptions today;
  today.time = 1763683200 + 365 * 86400;
  auto stale = verifier.verify(milan, today);
  EXPECT_EQ(status_of(stale, "snp.crl"), CheckStatus::kFail);
  EXPECT_EQ(detail_of(stale, "snp.crl"),
            "CRL is stale: nextUpdate 2026-05-12T00:00:00Z is not after the verification time "
            "2026-11-21T00:00:00Z");
  today.allow_stale_crl = true;
  EXPECT_EQ(status_of(verifier.verify(milan, today), "snp.crl"), CheckStatus::kPass);

  // Genoa's CRL offered for a Milan chain; and no CRL when one is required.
  SnpEvidence wrong = evidence_for("milan_v3_vcek_report.oak.bin");
  wrong.crls.push_back(crl_from("kds_vcek_crl_genoa.openpcc.der"));
  auto w = verifier.verify(wrong, at_vector_time());
  EXPECT_EQ(detail_of(w, "snp.crl"), "only CRLs issued by ARK-Genoa supplied");
  auto required = at_vector_time();
  required.require_crl = true;
  auto none = verifier.verify(evidence_for("turin_v5_vcek_report.oak.bin"), required);
  EXPECT_EQ(status_of(none, "snp.crl"), CheckStatus::kFail);
  EXPECT_EQ(status_of(none, "snp.revocation"), CheckStatus::kFail);
}

// The fake hierarchy exercises what AMD's real data cannot.
class SnpVerifyFakeAmd : public ::testing::Test {
 protected:
  void SetUp() override {
    chip_.assign(64, 0xab);
    tcb_.bl = 3;
    tcb_.tee = 0;
    tcb_.snp = 22;
    tcb_.ucode = 213;
    // Milan layout: [bl, tee, 0, 0, 0, 0, snp, ucode]
    tcb_raw_ = 3ull | (22ull << 48) | (213ull << 56);
  }
  SnpVerifier verifier() {
    SnpVerifierConfig config;
    config.trusted_cas = {amd_.ca()};
    return SnpVerifier(config);
  }
  SnpEvidence evidence(const cloister::testing::FakeVek& vek, std::uint32_t signer = 0) {
    SnpEvidence e;
    e.report = cloister::testing::make_signed_report(Product::kMilan, vek, tcb_raw_, chip_, signer);
    e.certificates.push_back({vek.cert, "test"});
    return e;
  }
  cloister::testing::FakeVek vcek() { return amd_.vcek({.tcb = tcb_, .hw_id = chip_}); }

  cloister::testing::FakeAmd amd_{Product::kMilan};
  Bytes chip_;
  TcbParts tcb_;
  std::uint64_t tcb_raw_ = 0;
  const UnixTime now_ = 1763683200;
};

TEST_F(SnpVerifyFakeAmd, BaselinePassesOnlyWithTheTestRootTrusted) {
  auto vek = vcek();
  SnpEvidence e = evidence(vek);
  e.crls.push_back({amd_.crl({}, now_ - 86400, now_ + 86400), "test"});
  SnpVerifyOptions o;
  o.time = now_;
  auto v = verifier().verify(e, o);
  EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
  // With AMD's real roots the same evidence fails at the chain.
  auto real = SnpVerifier().verify(e, o);
  EXPECT_EQ(status_of(real, "snp.chain.vek"), CheckStatus::kFail);
}

TEST_F(SnpVerifyFakeAmd, RevokedIntermediateOrVcek) {
  auto vek = vcek();
  SnpVerifyOptions o;
  o.time = now_;
  SnpEvidence e = evidence(vek);
  e.crls.push_back({amd_.crl({amd_.ask().serial()}, now_ - 86400, now_ + 86400), "test"});
  auto v = verifier().verify(e, o);
  EXPECT_FALSE(v.checks.passed());
  EXPECT_EQ(status_of(v, "snp.revocation"), CheckStatus::kFail);
  EXPECT_EQ(v.checks.find("snp.revocation")->found.rfind("SEV-Milan serial 0x10001 revoked", 0),
            0u);
  e.crls = {{amd_.crl({Bytes{}}, now_ - 86400, now_ + 86400), "test"}};  // serial 0
  EXPECT_EQ(status_of(verifier().verify(e, o), "snp.revocation"), CheckStatus::kFail);
}

TEST_F(SnpVerifyFakeAmd, ForgedOrFutureCrls) {
  auto vek = vcek();
  SnpVerifyOptions o;
  o.time = now_;
  SnpEvidence e = evidence(vek);
  e.crls.push_back({amd_.crl_signed_by_ask(now_ - 86400, now_ + 86400), "test"});
  auto forged = verifier().verify(e, o);
  EXPECT_EQ(detail_of(forged, "snp.crl"),
            "CRL signature does not verify with the RSA 4096 issuer key (ARK-Milan)");
  e.crls = {{amd_.crl({}, now_ + 3600, now_ + 86400), "test"}};
  auto future = verifier().verify(e, o);
  EXPECT_EQ(status_of(future, "snp.crl"), CheckStatus::kFail);
}

// The host chooses what the certificate table holds: an older CRL, still inside its validity,
// beside the current one hides nothing, and a stale one does not make the current one stale.
TEST_F(SnpVerifyFakeAmd, AnOlderCrlBesideTheCurrentOneHidesNothing) {
  auto vek = vcek();
  SnpVerifyOptions o;
  o.time = now_;
  SnpEvidence e = evidence(vek);
  e.crls.push_back({amd_.crl({}, now_ - 10 * 86400, now_ + 86400), "table"});
  e.crls.push_back({amd_.crl({amd_.ask().serial()}, now_ - 86400, now_ + 86400), "--crl"});
  auto v = verifier().verify(e, o);
  EXPECT_EQ(status_of(v, "snp.crl"), CheckStatus::kPass);
  EXPECT_EQ(status_of(v, "snp.revocation"), CheckStatus::kFail);
  EXPECT_EQ(v.checks.find("snp.revocation")->found.rfind("SEV-Milan serial 0x10001 revoked", 0),
            0u);

  e.crls = {{amd_.crl({}, now_ - 10 * 86400, now_ - 86400), "table"},
            {amd_.crl({}, now_ - 3600, now_ + 86400), "--crl"}};
  auto current = verifier().verify(e, o);
  EXPECT_TRUE(current.checks.passed()) << dump(current.checks);
  EXPECT_EQ(current.checks.find("snp.revocation")->found,
            "SEV-Milan 0x10001, SEV-VCEK " + vek.cert.serial_hex() +
                " against 0 revoked serials in 2 CRLs");
}

// With a KDS client (here its cache, offline), the CRL for the chain's kind is consulted even
// though the evidence brings one: the VCEK CRL offered for a VLEK chain does not hide the ASVK's
// revocation.
TEST_F(SnpVerifyFakeAmd, TheCachedCrlForTheChainsKindIsConsultedBesideTheTables) {
  auto cache =
      std::filesystem::temp_directory_path() / ("cloister-crl-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(cache);
  std::filesystem::create_directories(cache / "vlek/v1/Milan");
  auto revoking = amd_.crl({amd_.asvk().serial()}, now_ - 86400, now_ + 86400);
  {
    std::ofstream out(cache / "vlek/v1/Milan/crl.der", std::ios::binary);
    out.write(reinterpret_cast<const char*>(revoking.der().data()),
              static_cast<std::streamsize>(revoking.der().size()));
  }
  SnpVerifierConfig config;
  config.trusted_cas = {amd_.ca()};
  KdsOptions offline;
  offline.cache_dir = cache;
  config.kds = std::make_shared<KdsClient>(offline);
  SnpVerifier with_cache(config);
  SnpVerifyOptions o;
  o.time = now_;
  auto vlek = amd_.vlek({.tcb = tcb_, .csp_id = "CN=test.example"});
  SnpEvidence e = evidence(vlek, 1u << 2);
  e.crls.push_back({amd_.crl({}, now_ - 3600, now_ + 86400), "table VCEK CRL"});
  EXPECT_TRUE(verifier().verify(e, o).checks.passed());
  auto v = with_cache.verify(e, o);
  std::filesystem::remove_all(cache);
  EXPECT_EQ(status_of(v, "snp.revocation"), CheckStatus::kFail);
  EXPECT_EQ(v.checks.find("snp.revocation")->found.rfind("SEV-VLEK-Milan serial 0x", 0), 0u)
      << v.checks.find("snp.revocation")->found;
  EXPECT_NE(v.checks.find("snp.crl")->found.find("from cache "), std::string::npos);
}

TEST_F(SnpVerifyFakeAmd, UnsignedMaskedAndVlekCases) {
  auto vek = vcek();
  SnpVerifyOptions o;
  o.time = now_;
  auto unsigned_report = verifier().verify(evidence(vek, 7u << 2), o);
  EXPECT_EQ(detail_of(unsigned_report, "snp.vek"), "the report is unsigned (SIGNING_KEY = none)");
  EXPECT_EQ(status_of(unsigned_report, "snp.signature"), CheckStatus::kFail);
  auto masked = verifier().verify(evidence(vek, 2u), o);
  EXPECT_EQ(detail_of(masked, "snp.signature"),
            "the firmware did not sign this report (MASK_CHIP_KEY)");
  // SIGNER_INFO says VLEK but only a VCEK came with the report.
  auto vlek_missing = verifier().verify(evidence(vek, 1u << 2), o);
  EXPECT_NE(detail_of(vlek_missing, "snp.vek").find("no VLEK supplied"), std::string::npos);

  // A real VLEK path through the ASVK.
  auto vlek = amd_.vlek({.tcb = tcb_, .csp_id = "CN=test.example"});
  auto ok = verifier().verify(evidence(vlek, 1u << 2), o);
  EXPECT_TRUE(ok.checks.passed()) << dump(ok.checks);
  EXPECT_EQ(ok.checks.find("snp.vek.identity")->found, "cspID CN=test.example");
}

TEST_F(SnpVerifyFakeAmd, MaskedChipIdSkipsIdentityButSignatureBinds) {
  chip_.assign(64, 0);
  auto vek = amd_.vcek({.tcb = tcb_, .hw_id = Bytes(64, 0x11)});
  SnpVerifyOptions o;
  o.time = now_;
  auto v = verifier().verify(evidence(vek), o);
  EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
  EXPECT_EQ(status_of(v, "snp.vek.identity"), CheckStatus::kSkip);
}

TEST_F(SnpVerifyFakeAmd, TcbMismatchAndInconsistency) {
  TcbParts other = tcb_;
  other.ucode = 200;
  auto vek = amd_.vcek({.tcb = other, .hw_id = chip_});
  SnpVerifyOptions o;
  o.time = now_;
  auto v = verifier().verify(evidence(vek), o);
  EXPECT_EQ(detail_of(v, "snp.vek.tcb"), "REPORTED_TCB differs from the TCB the VEK certifies");
  EXPECT_EQ(v.checks.find("snp.vek.tcb")->found, "bl 3, tee 0, snp 22, ucode 200");

  auto good = vcek();
  SnpEvidence e = evidence(good);
  store_le64(e.report, offset::kCurrentTcb, 3ull | (22ull << 48) | (100ull << 56));
  cloister::testing::sign_report(e.report, good);
  auto inconsistent = verifier().verify(e, o);
  EXPECT_EQ(detail_of(inconsistent, "snp.tcb.consistency"),
            "REPORTED_TCB exceeds CURRENT_TCB; COMMITTED_TCB exceeds CURRENT_TCB");
}

TEST_F(SnpVerifyFakeAmd, WrongIssuerNameAndExpiredVcek) {
  cloister::testing::VekSpec spec{.tcb = tcb_, .hw_id = chip_};
  spec.not_after = now_ - 1;
  auto expired = amd_.vcek(spec);
  SnpVerifyOptions o;
  o.time = now_;
  auto v = verifier().verify(evidence(expired), o);
  EXPECT_EQ(status_of(v, "snp.chain.validity"), CheckStatus::kFail);
  EXPECT_EQ(status_of(v, "snp.signature"), CheckStatus::kPass);
}

}  // namespace
}  // namespace cloister::attestation::snp
