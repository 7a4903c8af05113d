#include <gtest/gtest.h>

#include "cloister/attestation/snp/certs.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "snp_facts.h"

namespace cloister::attestation::snp {
namespace {

using cloister::testing::kSnpVectorTime;
using cloister::testing::read_vector;
using cloister::testing::snp_facts;
using cloister::testing::vector_path;

std::vector<Certificate> load_certs(const std::string& file) {
  auto path = vector_path("snp/" + file);
  if (!path) return {};
  auto certs = parse_certificates(read_vector(*path));
  EXPECT_TRUE(certs) << file << ": " << certs.error().message();
  return certs ? *certs : std::vector<Certificate>{};
}

std::string vek_file_of(const nlohmann::json& report_facts) {
  return report_facts["signature_verifies_with"].items().begin().key();
}

void expect_extensions(const nlohmann::json& want, const VekExtensions& got) {
  EXPECT_EQ(got.struct_version, want["structVersion"].get<long>());
  EXPECT_EQ(got.product_name, want["productName"]);
  EXPECT_EQ(got.bl_spl, want["blSPL"].get<int>());
  EXPECT_EQ(got.tee_spl, want["teeSPL"].get<int>());
  EXPECT_EQ(got.snp_spl, want["snpSPL"].get<int>());
  EXPECT_EQ(got.ucode_spl, want["ucodeSPL"].get<int>());
  EXPECT_EQ(got.fmc_spl.has_value(), want.contains("fmcSPL"));
  if (got.fmc_spl) {
    EXPECT_EQ(*got.fmc_spl, want["fmcSPL"].get<int>());
  }
  for (int i = 4; i <= 7; ++i) {
    std::string key = "spl_" + std::to_string(i);
    EXPECT_EQ(got.spl_4_7[i - 4].has_value(), want.contains(key)) << key;
  }
  if (want.contains("hwID")) {
    ASSERT_TRUE(got.hw_id.has_value());
    std::string hw = want["hwID"];
    EXPECT_EQ(to_hex(*got.hw_id), hw.substr(0, hw.find(' ')));
    EXPECT_EQ(got.hw_id_der_octet_string, hw.find("raw") == std::string::npos);
  } else {
    EXPECT_FALSE(got.hw_id.has_value());
  }
  EXPECT_EQ(got.csp_id.has_value(), want.contains("cspID"));
  if (got.csp_id) {
    EXPECT_EQ(*got.csp_id, want["cspID"]);
  }
}

TEST(SnpCerts, EveryRealVekDecodesAsTheFactsState) {
  CLOISTER_REQUIRE_SNP_FACTS();
  for (const auto& [report, f] : snp_facts()["reports"].items()) {
    SCOPED_TRACE(report);
    auto certs = load_certs(vek_file_of(f));
    ASSERT_EQ(certs.size(), 1u);
    const Certificate& vek = certs[0];
    const auto& want = f["vek_cert"];
    EXPECT_EQ(to_hex(vek.fingerprint()), want["sha256_der"]);
    EXPECT_EQ(vek.subject_cn(), want["subject_cn"]);
    EXPECT_EQ(vek.issuer_cn(), want["issuer_cn"]);
    EXPECT_EQ(vek.serial_hex(), want["serial"]);
    EXPECT_EQ(vek.signature_algorithm(), want["sig_alg"]);
    EXPECT_EQ(vek.public_key().describe(), "EC P-384");
    auto ext = parse_vek_extensions(vek);
    ASSERT_TRUE(ext) << ext.error().message();
    expect_extensions(want["extensions"], *ext);
    auto id = identify_amd_cert(vek);
    EXPECT_EQ(to_string(id.role), want["subject_cn"] == "SEV-VCEK" ? "VCEK" : "VLEK");
    ASSERT_TRUE(id.product.has_value());
    EXPECT_EQ(product_name(*id.product), f["product"]);
  }
}

// trustee's synthetic certificates: the raw and the OCTET STRING hwID encodings both decode.
TEST(SnpCerts, BothHwIdEncodingsDecode) {
  CLOISTER_REQUIRE_SNP_FACTS();
  for (const auto& [file, entries] : snp_facts()["certs"].items()) {
    if (file.rfind("FAKE_", 0) != 0) continue;
    SCOPED_TRACE(file);
    auto certs = load_certs(file);
    ASSERT_EQ(certs.size(), 1u);
    auto ext = parse_vek_extensions(certs[0]);
    ASSERT_TRUE(ext) << ext.error().message();
    expect_extensions(entries[0]["extensions"], *ext);
  }
}

TEST(SnpCerts, BuiltinCasAreAmdsKdsCertificates) {
  CLOISTER_REQUIRE_SNP_FACTS();
  for (const auto& [p, lower] : {std::pair{Product::kMilan, "milan"},
                                 {Product::kGenoa, "genoa"},
                                 {Product::kTurin, "turin"}}) {
    const AmdCa* ca = builtin_amd_ca(p);
    ASSERT_NE(ca, nullptr);
    auto vcek_bundle = load_certs(std::string("kds_vcek_cert_chain_") + lower + ".pem");
    auto vlek_bundle = load_certs(std::string("kds_vlek_cert_chain_") + lower + ".pem");
    ASSERT_EQ(vcek_bundle.size(), 2u);
    ASSERT_EQ(vlek_bundle.size(), 2u);
    EXPECT_EQ(ca->ask.der(), vcek_bundle[0].der());
    EXPECT_EQ(ca->ark.der(), vcek_bundle[1].der());
    EXPECT_EQ(ca->asvk.der(), vlek_bundle[0].der());
    const auto& facts = snp_facts()["certs"][std::string("kds_vcek_cert_chain_") + lower + ".pem"];
    EXPECT_EQ(to_hex(ca->ask.fingerprint()), facts[0]["sha256_der"]);
    EXPECT_EQ(to_hex(ca->ark.fingerprint()), facts[1]["sha256_der"]);
    EXPECT_EQ(ca->ark.serial_hex(), facts[1]["serial"]);
    EXPECT_EQ(identify_amd_cert(ca->ark).role, AmdCertRole::kArk);
    EXPECT_EQ(identify_amd_cert(ca->ask).role, AmdCertRole::kAsk);
    EXPECT_EQ(identify_amd_cert(ca->asvk).role, AmdCertRole::kAsvk);
    EXPECT_EQ(identify_amd_cert(ca->asvk).product, p);
    EXPECT_EQ(ca->ask.crl_distribution_points(),
              std::vector<std::string>{std::string("https://kdsintf.amd.com/vcek/v1/") +
                                       std::string(product_name(p)) + "/crl"});
  }
  EXPECT_EQ(builtin_amd_ca(Product::kVenice), nullptr);
}

TEST(SnpCerts, EveryRealChainPasses) {
  CLOISTER_REQUIRE_SNP_FACTS();
  for (const auto& [report, f] : snp_facts()["reports"].items()) {
    SCOPED_TRACE(report);
    auto vek = load_certs(vek_file_of(f)).at(0);
    auto product = *product_from_name(f["product"].get<std::string>());
    VekKind kind = vek.subject_cn() == "SEV-VCEK" ? VekKind::kVcek : VekKind::kVlek;
    const AmdCa* ca = builtin_amd_ca(product);
    Checks checks;
    check_vek_chain(ca->ark, ca->ark, ca->ica(kind), vek, product, kind, checks);
    check_chain_validity({&ca->ark, &ca->ica(kind), &vek}, kSnpVectorTime, checks);
    for (const auto& c : checks.all()) {
      EXPECT_EQ(c.status, CheckStatus::kPass) << c.name << ": " << c.detail;
    }
    EXPECT_EQ(checks.all().size(), 4u);
  }
}

TEST(SnpCerts, GenoaChainForMilanVcekFails) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto vek = load_certs("milan_vcek.oak.der").at(0);
  const AmdCa* genoa = builtin_amd_ca(Product::kGenoa);
  const AmdCa* milan = builtin_amd_ca(Product::kMilan);
  Checks checks;
  // Claiming Genoa: the VCEK's issuer is SEV-Milan and its signature does not verify.
  check_vek_chain(genoa->ark, genoa->ark, genoa->ask, vek, Product::kGenoa, VekKind::kVcek, checks);
  const Check* c = checks.find("snp.chain.vek");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, CheckStatus::kFail);
  EXPECT_EQ(c->detail, "issuer CN is not SEV-Genoa");
  // Genoa's ASK offered under Milan's pinned ARK.
  Checks mixed;
  check_vek_chain(milan->ark, milan->ark, genoa->ask, vek, Product::kMilan, VekKind::kVcek, mixed);
  EXPECT_EQ(mixed.find("snp.chain.ica")->status, CheckStatus::kFail);
  EXPECT_EQ(mixed.find("snp.chain.ica")->detail, "subject CN is not SEV-Milan");
  // A supplied ARK that is not the pinned one.
  Checks wrong_root;
  check_vek_chain(milan->ark, genoa->ark, milan->ask, vek, Product::kMilan, VekKind::kVcek,
                  wrong_root);
  EXPECT_EQ(wrong_root.find("snp.chain.ark")->detail,
            "public key is not AMD's pinned ARK-Milan key");
}

// Found by fuzz_x509: a certificate whose EC key does not decode must be rejected at parse time
// (it used to yield a null key that later code dereferenced).
TEST(SnpCerts, CertificateWithUndecodableKeyIsRejected) {
  auto der =
      cloister::read_file(std::string(CLOISTER_SOURCE_DIR) +
                              "/tests/attestation/corpus/x509/regression_undecodable_ec_key.der",
                          kCertificateFileLimit);
  ASSERT_TRUE(der);
  auto cert = Certificate::from_der(*der);
  ASSERT_FALSE(cert);
  EXPECT_EQ(cert.error().message().rfind("certificate public key cannot be decoded", 0), 0u);
}

TEST(SnpCerts, ExpiredVlekFailsValidityToday) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto vlek = load_certs("milan_vlek.trustee.der").at(0);
  Checks checks;
  check_chain_validity({&vlek}, 1763683200 /* 2025-11-21 */ + 30 * 86400, checks);
  EXPECT_EQ(checks.all().at(0).status, CheckStatus::kFail);
  EXPECT_EQ(checks.all().at(0).detail,
            "'SEV-VLEK' expired 2025-12-10T22:14:21Z (verification time 2025-12-21T00:00:00Z)");
}

}  // namespace
}  // namespace cloister::attestation::snp
