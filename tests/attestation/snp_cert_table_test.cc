#include <gtest/gtest.h>

#include "cloister/attestation/snp/abi.h"
#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/certs.h"
#include "cloister/common/hex.h"
#include "snp_facts.h"

namespace cloister::attestation::snp {
namespace {

using cloister::testing::read_vector;

TEST(SnpCertTable, GuidsRoundTripInRfc4122ByteOrder) {
  Guid g = *guid_from_string("63da758d-e664-4564-adc5-f4b93be8accd");
  EXPECT_EQ(g[0], 0x63);
  EXPECT_EQ(g[3], 0x8d);
  EXPECT_EQ(guid_to_string(g), "63da758d-e664-4564-adc5-f4b93be8accd");
  EXPECT_EQ(guid_to_string(guid_for(CertTableRole::kVlek)), "a8074bc2-a25a-483e-aae6-39c045a0b8a1");
  EXPECT_FALSE(guid_from_string("63da758de664-4564-adc5-f4b93be8accd0"));
}

// The constructed table from the shared vectors (real certificates in the GHCB layout).
TEST(SnpCertTable, ParsesTheConstructedTable) {
  CLOISTER_REQUIRE_VECTOR(path, "snp/CONSTRUCTED_certtable_milan_vcek_ask_ark.bin");
  Bytes table = read_vector(path);
  auto entries = parse_cert_table(table);
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].role, CertTableRole::kVcek);
  EXPECT_EQ((*entries)[0].offset, 0x60u);
  EXPECT_EQ((*entries)[0].length, 1360u);
  EXPECT_EQ((*entries)[1].role, CertTableRole::kAskOrAsvk);
  EXPECT_EQ((*entries)[1].offset, 0x5b0u);
  EXPECT_EQ((*entries)[1].length, 1677u);
  EXPECT_EQ((*entries)[2].role, CertTableRole::kArk);
  EXPECT_EQ((*entries)[2].offset, 0xc3du);
  EXPECT_EQ((*entries)[2].length, 1639u);
  auto vcek = Certificate::from_der((*entries)[0].data);
  ASSERT_TRUE(vcek);
  EXPECT_EQ(to_hex(vcek->fingerprint()),
            "0d057f9b6e29a69eda9c0154b259567d291c1c08d73a11e9d31ace07c435b6d8");
  EXPECT_EQ(Certificate::from_der((*entries)[1].data)->subject_cn(), "SEV-Milan");
  EXPECT_EQ(Certificate::from_der((*entries)[2].data)->subject_cn(), "ARK-Milan");
  // Re-encoding yields the same bytes (same order, offsets and page padding).
  std::vector<std::pair<Guid, Bytes>> again;
  for (const auto& e : *entries) again.emplace_back(e.guid, e.data);
  EXPECT_EQ(encode_cert_table(again), table);
}

// encode_cert_table() reproduces both tables in the shared vectors: the constructed table and
// the table half of the constructed report+table file (same bytes, GHCB layout).
TEST(SnpCertTableWriter, ReproducesTheVectorsTables) {
  CLOISTER_REQUIRE_VECTOR(table_path, "snp/CONSTRUCTED_certtable_milan_vcek_ask_ark.bin");
  CLOISTER_REQUIRE_VECTOR(combined_path, "snp/CONSTRUCTED_milan_v2_report_plus_certtable.bin");
  const Bytes combined = read_vector(combined_path);
  ASSERT_GT(combined.size(), kReportSize);
  for (const Bytes& table :
       {read_vector(table_path), Bytes(combined.begin() + kReportSize, combined.end())}) {
    auto entries = parse_cert_table(table);
    ASSERT_TRUE(entries) << entries.error().message();
    std::vector<std::pair<Guid, Bytes>> pairs;
    for (const auto& e : *entries) pairs.emplace_back(e.guid, e.data);
    EXPECT_EQ(encode_cert_table(pairs), table);
  }
}

// Entries written by the encoder parse back with the same GUIDs, data, and packed offsets.
TEST(SnpCertTableWriter, ConstructedTablesParseBack) {
  const std::vector<std::pair<Guid, Bytes>> entries = {
      {guid_for(CertTableRole::kVcek), Bytes(1500, 0x01)},
      {guid_for(CertTableRole::kAskOrAsvk), Bytes(1700, 0x02)},
      {guid_for(CertTableRole::kArk), Bytes(1700, 0x03)}};
  const Bytes table = encode_cert_table(entries);
  EXPECT_EQ(table.size(), 8192u);
  auto parsed = parse_cert_table(table);
  ASSERT_TRUE(parsed) << parsed.error().message();
  ASSERT_EQ(parsed->size(), 3u);
  std::uint32_t offset = 4 * 24;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*parsed)[i].guid, entries[i].first);
    EXPECT_EQ((*parsed)[i].data, entries[i].second);
    EXPECT_EQ((*parsed)[i].offset, offset);
    offset += static_cast<std::uint32_t>(entries[i].second.size());
  }
  EXPECT_EQ(encode_cert_table({}).size(), 4096u);
  EXPECT_TRUE(parse_cert_table(encode_cert_table({}))->empty());
}

class SnpCertTableRejects : public ::testing::Test {
 protected:
  // Two entries: VCEK at 72 (len 4), ARK at 76 (len 4), terminator, then data.
  Bytes table_ = encode_cert_table({{guid_for(CertTableRole::kVcek), Bytes{1, 2, 3, 4}},
                                    {guid_for(CertTableRole::kArk), Bytes{5, 6, 7, 8}}});
  std::string error() {
    auto r = parse_cert_table(table_);
    return r ? "parsed" : r.error().message();
  }
};

TEST_F(SnpCertTableRejects, WellFormedBaseline) {
  auto r = parse_cert_table(table_);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[1].data, (Bytes{5, 6, 7, 8}));
  EXPECT_EQ(table_.size(), 4096u);
}

TEST_F(SnpCertTableRejects, MissingTerminator) {
  Bytes short_table(table_.begin(), table_.begin() + 60);
  EXPECT_EQ(parse_cert_table(short_table).error().message(),
            "certificate table entry 2 GUID at offset 48: needs 16 bytes, only 12 left (no "
            "all-zero terminator entry)");
}

TEST_F(SnpCertTableRejects, OffsetInsideHeader) {
  store_le32(table_, 16, 40);
  EXPECT_EQ(error(),
            "certificate table entry 0 (63da758d-e664-4564-adc5-f4b93be8accd, VCEK): data offset "
            "40 lies inside the table header (which ends at 72)");
}

TEST_F(SnpCertTableRejects, DataPastEnd) {
  store_le32(table_, 20, 5000);
  EXPECT_EQ(error(),
            "certificate table entry 0 (63da758d-e664-4564-adc5-f4b93be8accd, VCEK): data 72+5000 "
            "runs past the end of the 4096-byte table");
  store_le32(table_, 20, 4);
  store_le32(table_, 40, 0xffffffff);  // offset + length overflows 32 bits
  EXPECT_NE(error().find("runs past the end"), std::string::npos);
}

TEST_F(SnpCertTableRejects, OverlapDuplicatesZeroLengthAndBadTerminator) {
  store_le32(table_, 40, 74);
  EXPECT_EQ(error(),
            "certificate table entry 1 (c0b406a4-a803-4952-9743-3fb6014cd0ae, ARK): data overlaps "
            "entry 0");
  store_le32(table_, 40, 76);
  std::copy(table_.begin(), table_.begin() + 16, table_.begin() + 24);
  EXPECT_NE(error().find("duplicate GUID (also entry 0)"), std::string::npos);
  table_ = encode_cert_table({{guid_for(CertTableRole::kVcek), Bytes{1}}});
  store_le32(table_, 20, 0);
  EXPECT_NE(error().find("zero length"), std::string::npos);
  table_ = encode_cert_table({{guid_for(CertTableRole::kVcek), Bytes{1}}});
  store_le32(table_, 24 + 20, 9);
  EXPECT_EQ(error(),
            "certificate table entry 1: zero GUID with non-zero offset/length (malformed "
            "terminator)");
}

TEST_F(SnpCertTableRejects, UnknownGuidsAreKept) {
  Guid custom = *guid_from_string("11111111-2222-3333-4444-555555555555");
  table_ = encode_cert_table({{custom, Bytes{9}}});
  auto r = parse_cert_table(table_);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].role, CertTableRole::kUnknown);
}

// One entry per GUID: a table lists at most kMaxCertTableEntries before its terminator, so a
// large random "table" cannot make the parser collect millions of entries.
TEST(SnpCertTable, AtMostTheEntryLimitIsParsed) {
  std::vector<std::pair<Guid, Bytes>> entries;
  for (std::size_t i = 0; i <= kMaxCertTableEntries; ++i) {
    Guid guid{};
    guid[0] = static_cast<std::uint8_t>(i + 1);
    guid[15] = 0xee;
    entries.emplace_back(guid, Bytes{static_cast<std::uint8_t>(i)});
  }
  const Bytes over = encode_cert_table(entries);
  entries.pop_back();
  auto at_limit = parse_cert_table(encode_cert_table(entries));
  ASSERT_TRUE(at_limit) << at_limit.error().message();
  EXPECT_EQ(at_limit->size(), kMaxCertTableEntries);
  auto refused = parse_cert_table(over);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(),
            "certificate table entry 64: a table has at most 64 entries (one per GUID) before its "
            "all-zero terminator");
}
}  // namespace
}  // namespace cloister::attestation::snp
