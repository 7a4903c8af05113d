#include <gtest/gtest.h>

#include "cloister/attestation/snp/report.h"
#include "cloister/common/hex.h"
#include "snp_facts.h"

namespace cloister::attestation::snp {
namespace {

using cloister::testing::snp_facts;
using cloister::testing::snp_report_bytes;

std::string hex_int(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void expect_tcb(const nlohmann::json& want, const TcbParts& got, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.bl, want["blSPL"].get<int>());
  EXPECT_EQ(got.tee, want["teeSPL"].get<int>());
  EXPECT_EQ(got.snp, want["snpSPL"].get<int>());
  EXPECT_EQ(got.ucode, want["ucodeSPL"].get<int>());
  if (want.contains("fmcSPL")) {
    ASSERT_TRUE(got.fmc.has_value());
    EXPECT_EQ(*got.fmc, want["fmcSPL"].get<int>());
  } else {
    EXPECT_FALSE(got.fmc.has_value());
  }
}

// Every field expected_facts.json records for every real report.
TEST(SnpReport, DecodesEveryFieldOfEveryRealReport) {
  CLOISTER_REQUIRE_SNP_FACTS();
  int reports = 0;
  for (const auto& [file, f] : snp_facts()["reports"].items()) {
    SCOPED_TRACE(file);
    auto decoded = parse_snp_report(snp_report_bytes(file));
    ASSERT_TRUE(decoded) << decoded.error().message();
    const SnpReport& r = *decoded;
    ++reports;
    EXPECT_EQ(r.version, f["version"].get<std::uint32_t>());
    EXPECT_EQ(r.guest_svn, f["guest_svn"].get<std::uint32_t>());
    EXPECT_EQ(hex_int(r.policy), f["policy"]);
    EXPECT_EQ(to_hex(r.family_id), f["family_id"]);
    EXPECT_EQ(to_hex(r.image_id), f["image_id"]);
    EXPECT_EQ(r.vmpl, f["vmpl"].get<std::uint32_t>());
    EXPECT_EQ(r.signature_algo, f["signature_algo"].get<std::uint32_t>());
    EXPECT_EQ(r.current_tcb.to_hex(), f["current_tcb"]);
    EXPECT_EQ(hex_int(r.platform_info), f["platform_info"]);
    EXPECT_EQ(hex_int(r.signer_info), f["signer_info"]);
    EXPECT_EQ(to_hex(r.report_data), f["report_data"]);
    EXPECT_EQ(to_hex(r.measurement), f["measurement"]);
    EXPECT_EQ(to_hex(r.host_data), f["host_data"]);
    EXPECT_EQ(to_hex(r.id_key_digest), f["id_key_digest"]);
    EXPECT_EQ(to_hex(r.author_key_digest), f["author_key_digest"]);
    EXPECT_EQ(to_hex(r.report_id), f["report_id"]);
    EXPECT_EQ(to_hex(r.report_id_ma), f["report_id_ma"]);
    EXPECT_EQ(r.reported_tcb.to_hex(), f["reported_tcb"]);
    EXPECT_EQ(to_hex(r.chip_id), f["chip_id"]);
    EXPECT_EQ(r.committed_tcb.to_hex(), f["committed_tcb"]);
    EXPECT_EQ(r.current_version.to_string(), f["current_version"]);
    EXPECT_EQ(r.committed_version.to_string(), f["committed_version"]);
    EXPECT_EQ(r.launch_tcb.to_hex(), f["launch_tcb"]);
    EXPECT_EQ(r.format_problems.size(), f["mbz_nonzero"].size());

    if (f.contains("cpuid_fam_id")) {
      ASSERT_TRUE(r.cpuid.has_value());
      EXPECT_EQ(hex_int(r.cpuid->family), f["cpuid_fam_id"]);
      EXPECT_EQ(hex_int(r.cpuid->model), f["cpuid_mod_id"]);
      EXPECT_EQ(hex_int(r.cpuid->stepping), f["cpuid_step"]);
      ASSERT_TRUE(r.cpuid_product().has_value());
      EXPECT_EQ(product_name(*r.cpuid_product()), f["product"]);
    } else {
      EXPECT_FALSE(r.cpuid.has_value());
    }
    if (f.contains("launch_mit_vector")) {
      EXPECT_EQ(hex_int(*r.launch_mit_vector), f["launch_mit_vector"]);
      EXPECT_EQ(hex_int(*r.current_mit_vector), f["current_mit_vector"]);
    } else {
      EXPECT_FALSE(r.launch_mit_vector.has_value());
    }

    const auto& pd = f["policy_decoded"];
    GuestPolicy p = r.guest_policy();
    EXPECT_EQ(p.abi_minor, pd["abi_minor"].get<int>());
    EXPECT_EQ(p.abi_major, pd["abi_major"].get<int>());
    EXPECT_EQ(p.smt, pd["smt"].get<int>() == 1);
    EXPECT_EQ(p.reserved_bit17, pd["reserved_bit17"].get<int>() == 1);
    EXPECT_EQ(p.migrate_ma, pd["migrate_ma"].get<int>() == 1);
    EXPECT_EQ(p.debug, pd["debug"].get<int>() == 1);
    EXPECT_EQ(p.single_socket, pd["single_socket"].get<int>() == 1);
    EXPECT_EQ(p.cxl_allow, pd["cxl_allow"].get<int>() == 1);
    EXPECT_EQ(p.mem_aes_256_xts, pd["mem_aes_256_xts"].get<int>() == 1);
    EXPECT_EQ(p.rapl_dis, pd["rapl_dis"].get<int>() == 1);
    EXPECT_EQ(p.ciphertext_hiding, pd["ciphertext_hiding"].get<int>() == 1);
    EXPECT_EQ(p.page_swap_disable, pd["page_swap_disable"].get<int>() == 1);

    const auto& pi = f["platform_info_decoded"];
    PlatformInfo info = r.platform_info_bits();
    EXPECT_EQ(info.smt_en, pi["smt_en"].get<int>() == 1);
    EXPECT_EQ(info.tsme_en, pi["tsme_en"].get<int>() == 1);
    EXPECT_EQ(info.ecc_en, pi["ecc_en"].get<int>() == 1);
    EXPECT_EQ(info.rapl_dis, pi["rapl_dis"].get<int>() == 1);
    EXPECT_EQ(info.ciphertext_hiding_en, pi["ciphertext_hiding_en"].get<int>() == 1);
    EXPECT_EQ(info.alias_check_complete, pi["alias_check_complete"].get<int>() == 1);
    EXPECT_EQ(info.unknown_bit6, pi["reserved6"].get<int>() == 1);
    EXPECT_EQ(info.tio_en, pi["tio_en"].get<int>() == 1);

    const auto& si = f["signer_info_decoded"];
    SignerInfo s = r.signer();
    EXPECT_EQ(s.author_key_en, si["author_key_en"].get<int>() == 1);
    EXPECT_EQ(s.mask_chip_key, si["mask_chip_key"].get<int>() == 1);
    EXPECT_EQ(to_string(s.signing_key), si["signing_key"]);

    auto product = product_from_name(f["product"].get<std::string>());
    ASSERT_TRUE(product);
    expect_tcb(f["current_tcb_decoded"], r.current_tcb.parts(*product), "current");
    expect_tcb(f["reported_tcb_decoded"], r.reported_tcb.parts(*product), "reported");
    expect_tcb(f["committed_tcb_decoded"], r.committed_tcb.parts(*product), "committed");
    expect_tcb(f["launch_tcb_decoded"], r.launch_tcb.parts(*product), "launch");
  }
  EXPECT_EQ(reports, 7);
}

// The Turin TCB bytes decode differently under the Milan layout (research/snp.md §b).
TEST(SnpReport, TurinTcbLayoutPutsFmcFirst) {
  TcbVersion tcb(load_le64(*from_hex("0001000200000047"), 0));
  EXPECT_EQ(tcb.parts(Product::kTurin).to_string(), "fmc 0, bl 1, tee 0, snp 2, ucode 71");
  EXPECT_EQ(tcb.parts(Product::kMilan).to_string(), "bl 0, tee 1, snp 0, ucode 71");
  EXPECT_TRUE(tcb.reserved_bytes_zero(Product::kTurin));
  EXPECT_FALSE(tcb.reserved_bytes_zero(Product::kMilan));
}

class SnpReportMutation : public ::testing::Test {
 protected:
  void SetUp() override {
    CLOISTER_REQUIRE_SNP_FACTS();
    bytes_ = snp_report_bytes("genoa_v5_vcek_report.oak.bin");
    ASSERT_TRUE(parse_snp_report(bytes_));
  }
  std::string first_problem() {
    auto r = decode_snp_report(bytes_);
    EXPECT_TRUE(r);
    if (!r || r->format_problems.empty()) return "no problem";
    return r->format_problems.front();
  }
  Bytes bytes_;
};

TEST_F(SnpReportMutation, WrongSizesAreRejected) {
  Bytes truncated(bytes_.begin(), bytes_.begin() + 1000);
  EXPECT_EQ(decode_snp_report(truncated).error().message(),
            "report is 1000 bytes, expected 1184 (SEV-SNP ATTESTATION_REPORT)");
  bytes_.push_back(0);
  EXPECT_FALSE(decode_snp_report(bytes_));
  EXPECT_FALSE(decode_snp_report({}));
}

TEST_F(SnpReportMutation, UnknownVersionsAreNamed) {
  for (std::uint32_t v : {0u, 1u, 6u, 0x80000002u}) {
    store_le32(bytes_, offset::kVersion, v);
    EXPECT_EQ(first_problem(), "VERSION: expected 2, 3, 4 or 5, found " + std::to_string(v));
    auto r = decode_snp_report(bytes_);
    EXPECT_FALSE(r->cpuid.has_value());
  }
}

TEST_F(SnpReportMutation, UnknownSignatureAlgorithmIsNamed) {
  store_le32(bytes_, offset::kSignatureAlgo, 2);
  EXPECT_EQ(first_problem(), "SIGNATURE_ALGO: expected 1 (ECDSA P-384 with SHA-384), found 2");
  EXPECT_FALSE(parse_snp_report(bytes_));
}

TEST_F(SnpReportMutation, EveryReservedByteIsChecked) {
  struct Range {
    std::size_t begin, end;
    const char* field;
  };
  // v5 layout reserved ranges.
  const Range ranges[] = {{0x04C, 0x050, "reserved field"},
                          {0x18B, 0x1A0, "reserved field after REPORTED_TCB"},
                          {0x1EB, 0x1EC, "reserved field"},
                          {0x1EF, 0x1F0, "reserved field"},
                          {0x208, 0x2A0, "reserved field before SIGNATURE"},
                          {0x2D0, 0x2E8, "SIGNATURE.R high bytes"},
                          {0x318, 0x330, "SIGNATURE.S high bytes"},
                          {0x330, 0x4A0, "reserved field after SIGNATURE"}};
  for (const auto& range : ranges) {
    for (std::size_t off = range.begin; off < range.end; ++off) {
      Bytes copy = bytes_;
      copy[off] = 0x01;
      auto r = decode_snp_report(copy);
      ASSERT_TRUE(r);
      ASSERT_EQ(r->format_problems.size(), 1u) << "offset " << off;
      EXPECT_EQ(r->format_problems[0].rfind(range.field, 0), 0u) << r->format_problems[0];
    }
  }
}

TEST_F(SnpReportMutation, PolicyAndSignerInfoReservedBits) {
  Bytes copy = bytes_;
  store_le64(copy, offset::kPolicy, 0x10000);  // bit 17 clear
  bytes_ = copy;
  EXPECT_EQ(first_problem(), "POLICY bit 17 (reserved, must be one): found 0 in policy 0x10000");
  store_le64(bytes_, offset::kPolicy, 0x30000ull | (1ull << 40));
  EXPECT_EQ(first_problem(),
            "POLICY bits 63:26 (reserved) must be zero, found policy 0x10000030000");
  store_le64(bytes_, offset::kPolicy, 0x30000);
  store_le32(bytes_, offset::kSignerInfo, 0x20);
  EXPECT_EQ(first_problem(), "SIGNER_INFO bits 31:5 (reserved) must be zero, found 0x20");
  store_le32(bytes_, offset::kSignerInfo, 3u << 2);
  EXPECT_EQ(first_problem(),
            "SIGNER_INFO.SIGNING_KEY: expected 0 (VCEK), 1 (VLEK) or 7 (none), found 3");
}

// encode_snp_report() is the exact inverse of the decoder on every report in the shared vectors
// (the six real reports of MANIFEST.md and the report half of the constructed report+table file).
TEST(SnpReportWriter, ReproducesEveryRealReportByteForByte) {
  CLOISTER_REQUIRE_SNP_FACTS();
  int reports = 0;
  for (const auto& [file, f] : snp_facts()["reports"].items()) {
    SCOPED_TRACE(file);
    const Bytes bytes = snp_report_bytes(file);
    auto decoded = parse_snp_report(bytes);
    ASSERT_TRUE(decoded) << decoded.error().message();
    auto encoded = encode_snp_report(*decoded);
    ASSERT_TRUE(encoded) << encoded.error().message();
    EXPECT_EQ(*encoded, bytes);
    ++reports;
  }
  EXPECT_EQ(reports, 7);
}

// A report whose every field holds a distinct value, in the given version's layout.
SnpReport constructed_report(std::uint32_t version) {
  SnpReport r;
  r.version = version;
  r.guest_svn = 0x01020304;
  r.policy = 0x30000 | (1ull << policy_bit::kPageSwapDisable);
  r.family_id.fill(0x11);
  r.image_id.fill(0x12);
  r.vmpl = 2;
  r.signature_algo = kSignatureAlgoEcdsaP384Sha384;
  r.current_tcb = TcbVersion(0x5400000000001a0bull);
  r.platform_info = 0x25;
  r.signer_info = kSignerInfoAuthorKeyEn;
  r.report_data.fill(0x13);
  r.measurement.fill(0x14);
  r.host_data.fill(0x15);
  r.id_key_digest.fill(0x16);
  r.author_key_digest.fill(0x17);
  r.report_id.fill(0x18);
  r.report_id_ma.fill(0xff);
  r.reported_tcb = TcbVersion(0x5300000000001909ull);
  if (version >= 3 && version <= 5) r.cpuid = CpuidInfo{0x19, 0x11, 0x01};
  r.chip_id.fill(0x19);
  r.committed_tcb = TcbVersion(0x5300000000001a0bull);
  r.current_version = {1, 55, 43};
  r.committed_version = {1, 55, 42};
  r.launch_tcb = TcbVersion(0x5200000000001a0bull);
  if (version == 5) {
    r.launch_mit_vector = 0x3;
    r.current_mit_vector = 0x7;
  }
  for (std::size_t i = 0; i < kP384ScalarSize; ++i) {
    r.signature_r[i] = static_cast<std::uint8_t>(i + 1);
    r.signature_s[i] = static_cast<std::uint8_t>(0xff - i);
  }
  return r;
}

TEST(SnpReportWriter, ConstructedReportsDecodeToTheSameValue) {
  for (std::uint32_t version : {2u, 3u, 4u, 5u, 6u}) {
    SCOPED_TRACE(version);
    SnpReport r = constructed_report(version);
    auto bytes = encode_snp_report(r);
    ASSERT_TRUE(bytes) << bytes.error().message();
    ASSERT_EQ(bytes->size(), kReportSize);
    auto decoded = decode_snp_report(*bytes);
    ASSERT_TRUE(decoded);
    std::copy(bytes->begin(), bytes->end(), r.raw.begin());
    if (version == 6) r.format_problems = {"VERSION: expected 2, 3, 4 or 5, found 6"};
    EXPECT_EQ(*decoded, r);
  }
  // Fields at their ABI offsets (spot checks; the decoder reads the rest).
  const Bytes v5 = *encode_snp_report(constructed_report(5));
  EXPECT_EQ(load_le64(v5, offset::kCurrentMitVector), 0x7u);
  EXPECT_EQ(v5[offset::kCpuidModId], 0x11);
  EXPECT_EQ(v5[offset::kCurrentMajor], 1);
  EXPECT_EQ(v5[offset::kCurrentBuild], 43);
}

TEST(SnpReportWriter, OptionalFieldsMustMatchTheVersion) {
  SnpReport v2 = constructed_report(2);
  v2.cpuid = CpuidInfo{0x19, 0x01, 0x01};
  EXPECT_EQ(encode_snp_report(v2).error().message(),
            "CPUID_FAM_ID/CPUID_MOD_ID/CPUID_STEP: a version 2 report has no CPUID fields, found "
            "them set");
  SnpReport v3 = constructed_report(3);
  v3.cpuid.reset();
  EXPECT_EQ(encode_snp_report(v3).error().message(),
            "CPUID_FAM_ID/CPUID_MOD_ID/CPUID_STEP: a version 3 report carries them, found none");
  SnpReport v5 = constructed_report(5);
  v5.current_mit_vector.reset();
  EXPECT_EQ(encode_snp_report(v5).error().message(),
            "LAUNCH_MIT_VECTOR/CURRENT_MIT_VECTOR: a version 5 report carries both, found "
            "LAUNCH_MIT_VECTOR set and CURRENT_MIT_VECTOR unset");
}

TEST(SnpReport, TcbPartsEncodeInTheProductsLayout) {
  TcbParts turin{.fmc = 0, .bl = 1, .tee = 0, .snp = 2, .ucode = 71};
  EXPECT_EQ(TcbVersion::from_parts(Product::kTurin, turin)->to_hex(), "0001000200000047");
  TcbParts genoa{.fmc = std::nullopt, .bl = 10, .tee = 0, .snp = 25, .ucode = 84};
  EXPECT_EQ(TcbVersion::from_parts(Product::kGenoa, genoa)->to_hex(), "0a00000000001954");
  EXPECT_EQ(TcbVersion::from_parts(Product::kGenoa, turin).error().message(),
            "TCB for Genoa: an FMC SPL was given, but this product's TCB_VERSION has none");
  EXPECT_EQ(TcbVersion::from_parts(Product::kTurin, genoa).error().message(),
            "TCB for Turin: the FMC SPL is missing (this product's TCB_VERSION starts with it)");
}

TEST(SnpProduct, CpuidMapping) {
  EXPECT_EQ(product_from_cpuid(0x19, 0x01), Product::kMilan);
  EXPECT_EQ(product_from_cpuid(0x19, 0x11), Product::kGenoa);
  EXPECT_EQ(product_from_cpuid(0x19, 0xA0), Product::kGenoa);  // Bergamo/Siena
  EXPECT_EQ(product_from_cpuid(0x19, 0xAF), Product::kGenoa);  // snpguest misses this one
  EXPECT_EQ(product_from_cpuid(0x1A, 0x02), Product::kTurin);
  EXPECT_EQ(product_from_cpuid(0x1A, 0x50), Product::kVenice);
  EXPECT_EQ(product_from_cpuid(0x19, 0x30), std::nullopt);
  EXPECT_EQ(product_from_cpuid(0x17, 0x31), std::nullopt);  // Rome: no SNP
}

TEST(SnpProduct, NamesAndVekProductNames) {
  EXPECT_EQ(*product_from_name("genoa"), Product::kGenoa);
  EXPECT_EQ(*product_from_name("Siena"), Product::kGenoa);
  EXPECT_EQ(product_from_name("Rome").error().message(),
            "unknown AMD product 'Rome' (expected Milan, Genoa, Bergamo, Siena, Turin or Venice)");
  EXPECT_EQ(*product_from_vek_product_name("Milan-B0"), Product::kMilan);
  EXPECT_EQ(*product_from_vek_product_name("Milan"), Product::kMilan);
  EXPECT_EQ(*product_from_vek_product_name("Turin"), Product::kTurin);
  EXPECT_FALSE(product_from_vek_product_name("Naples-B2"));
}

}  // namespace
}  // namespace cloister::attestation::snp
