#include "cloister/firmware_loader/ovmf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ovmf_builder.h"
#include "support/vectors.h"
#include "test_util.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::error_of;
using ::cloister::testing::OvmfImageBuilder;
using ::cloister::testing::SevSectionSpec;
using ::cloister::testing::TdvfSectionSpec;
using ::testing::HasSubstr;
namespace guids = ::cloister::testing::guids;

Result<OvmfImage> parse(Bytes bytes) {
  return OvmfImage::parse(std::make_shared<const Bytes>(std::move(bytes)));
}

// A well-formed image with SEV and TDX metadata.
OvmfImageBuilder good_image() {
  return ::cloister::testing::amdsev_like_image().tdx_metadata(
      {{0x2000, 0x2000, 0xfffff000 - 0x1000, 0x2000, 0, 1},
       {0x0, 0x1000, 0xffff0000, 0x1000, 1, 0},
       {0, 0, 0x809000, 0x2000, 2, 0},
       {0, 0, 0x800000, 0x6000, 3, 0}});
}

TEST(OvmfImage, ParsesAWellFormedImage) {
  auto image = OvmfImage::parse(good_image().shared());
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_EQ(image->footer_entries().size(), 4u);
  EXPECT_EQ(image->footer_entries()[0].guid, guids::kResetBlock);
  EXPECT_EQ(image->sev_es_reset_eip(), 0x80b004u);
  ASSERT_TRUE(image->sev_hash_table().has_value());
  EXPECT_EQ(image->sev_hash_table()->gpa, 0x810c00u);
  EXPECT_EQ(image->sev_hash_table()->size, 0x400u);
  auto sev = image->sev_metadata();
  ASSERT_TRUE(sev.ok()) << sev.error().message();
  ASSERT_EQ(sev->size(), 5u);
  EXPECT_EQ((*sev)[4].type, SevSectionType::kSnpKernelHashes);
  EXPECT_EQ((*sev)[4].gpa, 0x810000u);
  auto tdx = image->tdx_metadata();
  ASSERT_TRUE(tdx.ok()) << tdx.error().message();
  ASSERT_EQ(tdx->size(), 4u);
  EXPECT_EQ((*tdx)[0].type, TdvfSectionType::kBfv);
  EXPECT_TRUE((*tdx)[0].mr_extend());
  EXPECT_EQ((*tdx)[2].type, TdvfSectionType::kTdHob);
}

TEST(OvmfImage, DebianOvmfFacts) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/debian12_OVMF.fd");
  auto image =
      OvmfImage::parse(std::make_shared<const Bytes>(::cloister::testing::read_vector(path)));
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_EQ(image->sev_es_reset_eip(), 0x80b004u);
  EXPECT_EQ(image->sev_hash_table()->gpa, 0u);
  auto sev = image->sev_metadata();
  ASSERT_TRUE(sev.ok()) << sev.error().message();
  const std::vector<std::tuple<std::uint32_t, std::uint32_t, SevSectionType>> expected = {
      {0x800000, 0x9000, SevSectionType::kSnpSecMem},
      {0x80a000, 0x3000, SevSectionType::kSnpSecMem},
      {0x80d000, 0x1000, SevSectionType::kSnpSecrets},
      {0x80e000, 0x1000, SevSectionType::kCpuid},
      {0x80f000, 0x11000, SevSectionType::kSnpSecMem}};
  ASSERT_EQ(sev->size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*sev)[i].gpa, std::get<0>(expected[i]));
    EXPECT_EQ((*sev)[i].size, std::get<1>(expected[i]));
    EXPECT_EQ((*sev)[i].type, std::get<2>(expected[i]));
  }
}

// sev-snp-measure's 4 KiB suffix of the AmdSev build: SNP metadata is usable, but its TDVF
// descriptor points into the full image, so TDX metadata is (correctly) rejected.
TEST(OvmfImage, AmdSevSuffixHasKernelHashesButNoUsableTdvf) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/ovmf_AmdSev_suffix.bin");
  auto image =
      OvmfImage::parse(std::make_shared<const Bytes>(::cloister::testing::read_vector(path)));
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_EQ(image->sev_hash_table()->gpa, 0x810c00u);
  auto sev = image->sev_metadata();
  ASSERT_TRUE(sev.ok());
  EXPECT_EQ(sev->size(), 7u);
  EXPECT_EQ((*sev)[5].type, SevSectionType::kSnpKernelHashes);
  EXPECT_THAT(error_of(image->tdx_metadata()), HasSubstr("exceeds the 0x1000-byte image"));
}

TEST(OvmfImage, RejectsImagesSmallerThanTheFooter) {
  EXPECT_THAT(error_of(parse(Bytes(47, 0))),
              HasSubstr("47 bytes, smaller than the 50-byte footer area"));
}

TEST(OvmfImage, RejectsAnImageWithoutTable) {
  auto r = parse(OvmfImageBuilder(0x4000).no_table().build());
  EXPECT_THAT(error_of(r), HasSubstr("has no footer table"));
  EXPECT_THAT(error_of(r), HasSubstr("at offset 0x3fd0 (end - 0x30)"));
}

TEST(OvmfImage, RejectsATableSizeSmallerThanItsFooter) {
  OvmfImageBuilder b = good_image();
  Bytes bytes = b.build();
  store_le16(bytes, b.table_size_offset(), 17);
  EXPECT_THAT(error_of(parse(bytes)), HasSubstr("total size 17 is smaller than its own 18-byte"));
}

TEST(OvmfImage, RejectsATableSizeBeyondTheImage) {
  OvmfImageBuilder b(0x2000);
  b.reset_eip(1);
  Bytes bytes = b.build();
  store_le16(bytes, b.table_size_offset(), 0x2000 - 31);
  EXPECT_THAT(error_of(parse(bytes)), HasSubstr("reaches before the start of the 8192-byte image"));
}

TEST(OvmfImage, RejectsAnEntrySmallerThanItsTrailer) {
  OvmfImageBuilder b(0x2000);
  b.reset_eip(0x80b004);
  Bytes bytes = b.build();
  // The reset block entry is the only one: its size field sits just before its GUID.
  const std::size_t size_at = b.table_size_offset() - 18;
  store_le16(bytes, size_at, 12);
  auto r = parse(bytes);
  EXPECT_THAT(error_of(r), HasSubstr("declares size 12"));
  EXPECT_THAT(error_of(r), HasSubstr("smaller than the 18-byte entry trailer"));
  EXPECT_THAT(error_of(r), HasSubstr("at offset 0x1fbc"));
}

TEST(OvmfImage, RejectsAnEntryRunningPastTheTable) {
  OvmfImageBuilder b(0x2000);
  b.reset_eip(0x80b004);
  Bytes bytes = b.build();
  store_le16(bytes, b.table_size_offset() - 18, 40);
  EXPECT_THAT(error_of(parse(bytes)), HasSubstr("running past the start of the table"));
}

TEST(OvmfImage, RejectsATruncatedEntry) {
  OvmfImageBuilder b(0x2000);
  b.reset_eip(0x80b004);
  Bytes bytes = b.build();
  // Claim 5 more table bytes than the entries fill.
  store_le16(bytes, b.table_size_offset(), 18 + 22 + 5);
  auto r = parse(bytes);
  EXPECT_THAT(error_of(r), HasSubstr("truncated entry"));
  EXPECT_THAT(error_of(r), HasSubstr("only 5 bytes remain"));
}

TEST(OvmfImage, RejectsDuplicateEntries) {
  auto r = parse(OvmfImageBuilder(0x2000).reset_eip(1).reset_eip(2).build());
  EXPECT_THAT(error_of(r), HasSubstr("00f771de-1a7e-4fcb-890e-68c77e2fb44e"));
  EXPECT_THAT(error_of(r), HasSubstr("appears twice"));
}

TEST(OvmfImage, RejectsKnownEntriesTooShortForTheirFields) {
  auto r = parse(OvmfImageBuilder(0x2000).entry(guids::kHashTable, Bytes(6, 0)).build());
  EXPECT_THAT(error_of(r), HasSubstr("SEV hash table entry"));
  EXPECT_THAT(error_of(r), HasSubstr("has 6 data bytes, expected at least 8"));
}

struct SevCase {
  const char* name;
  std::vector<SevSectionSpec> sections;
  const char* error;
};

TEST(OvmfImage, RejectsMalformedSevSections) {
  const SevCase cases[] = {
      {"empty", {}, "the section list is empty"},
      {"unknown type", {{0x800000, 0x1000, 5}}, "unknown section type 0x5"},
      {"unaligned", {{0x800800, 0x1000, 1}}, "must be 4 KiB aligned"},
      {"empty section", {{0x800000, 0, 1}}, "the section is empty"},
      {"beyond 4 GiB", {{0xfffff000, 0x2000, 1}}, "ends beyond 4 GiB"},
      {"two-page secrets", {{0x800000, 0x2000, 2}}, "expected exactly one 4 KiB page"},
      {"overlap",
       {{0x800000, 0x9000, 1}, {0x808000, 0x1000, 3}},
       "section 0 [0x800000, 0x809000) overlaps section 1 [0x808000, 0x809000)"},
  };
  for (const SevCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto image = parse(OvmfImageBuilder().sev_metadata(c.sections).build());
    ASSERT_TRUE(image.ok()) << image.error().message();
    EXPECT_THAT(error_of(image->sev_metadata()), HasSubstr(c.error));
  }
}

TEST(OvmfImage, RejectsMalformedSevMetadataHeaders) {
  OvmfImageBuilder b;
  b.sev_metadata({{0x800000, 0x1000, 1}});
  const std::size_t at = b.sev_metadata_offset();
  {
    Bytes bytes = b.build();
    bytes[at] = 'X';
    EXPECT_THAT(error_of(parse(bytes)->sev_metadata()),
                HasSubstr("SEV metadata at offset 0x3800: expected signature \"ASEV\""));
  }
  {
    Bytes bytes = b.build();
    store_le32(bytes, at + 8, 2);
    EXPECT_THAT(error_of(parse(bytes)->sev_metadata()), HasSubstr("expected version 1, found 2"));
  }
  {
    Bytes bytes = b.build();
    store_le32(bytes, at + 4, 20);
    EXPECT_THAT(error_of(parse(bytes)->sev_metadata()),
                HasSubstr("declared size 20 is too small for 1 sections (28 bytes)"));
  }
  {
    Bytes bytes = b.build();
    store_le32(bytes, at + 12, 0x10000000);
    store_le32(bytes, at + 4, 0xffffffff);
    EXPECT_THAT(error_of(parse(bytes)->sev_metadata()),
                HasSubstr("268435456 sections, more than the 64 a metadata list may have"));
  }
  {
    // Metadata 0x100 bytes before the end: 21 sections do not fit there.
    OvmfImageBuilder near_end(0x2000);
    near_end.entry(guids::kSevMetadata, ::cloister::testing::le32(0x100));
    Bytes bytes = near_end.build();
    const std::size_t header = bytes.size() - 0x100;
    std::copy_n("ASEV", 4, bytes.begin() + static_cast<std::ptrdiff_t>(header));
    store_le32(bytes, header + 4, 0xffffffff);
    store_le32(bytes, header + 8, 1);
    store_le32(bytes, header + 12, 21);
    EXPECT_THAT(error_of(parse(bytes)->sev_metadata()),
                HasSubstr("21 sections (268 bytes) run past the end of the 0x2000-byte image"));
  }
  {
    OvmfImageBuilder far(0x2000);
    far.entry(guids::kSevMetadata, ::cloister::testing::le32(0x2001));
    EXPECT_THAT(error_of(parse(far.build())->sev_metadata()),
                HasSubstr("SEV metadata offset 0x2001"));
  }
  EXPECT_THAT(error_of(parse(OvmfImageBuilder().reset_eip(1).build())->sev_metadata()),
              HasSubstr("the firmware has no SEV metadata"));
}

struct TdvfCase {
  const char* name;
  std::vector<TdvfSectionSpec> sections;
  const char* error;
};

TEST(OvmfImage, RejectsMalformedTdvfSections) {
  const TdvfCase cases[] = {
      {"empty", {}, "the section list is empty"},
      {"unknown type", {{0, 0, 0x800000, 0x1000, 7, 0}}, "unknown section type 7"},
      {"attribute", {{0, 0, 0x800000, 0x1000, 3, 4}}, "unknown attribute bits 0x4"},
      {"extend and aug", {{0, 0, 0x800000, 0x1000, 3, 3}}, "combine MR.EXTEND with PAGE.AUG"},
      {"perm mem at launch",
       {{0, 0, 0x800000, 0x1000, 4, 1}},
       "(PermMem): attributes 0x1: expected PAGE.AUG (0x2); permanent memory is added after "
       "launch"},
      {"unaligned", {{0, 0, 0x800800, 0x1000, 3, 0}}, "must be 4 KiB aligned"},
      {"no memory", {{0, 0, 0x800000, 0, 3, 0}}, "MemoryDataSize is 0"},
      {"beyond 52 bits", {{0, 0, 0xf'ffff'ffff'f000ull, 0x2000, 3, 0}}, "52-bit"},
      {"raw > memory", {{0, 0x2000, 0x800000, 0x1000, 0, 1}}, "RawDataSize 0x2000 exceeds"},
      {"bfv without data", {{0, 0, 0x800000, 0x1000, 0, 1}}, "needs RawDataSize > 0"},
      {"hob with data", {{0, 0x1000, 0x800000, 0x1000, 2, 0}}, "RawDataSize 0x1000 must be 0"},
      {"data out of image",
       {{0x3800, 0x1000, 0x800000, 0x1000, 0, 1}},
       "DataOffset 0x3800 + RawDataSize 0x1000 exceeds the 0x4000-byte image"},
      {"overlap",
       {{0, 0, 0x800000, 0x6000, 3, 0}, {0, 0, 0x805000, 0x2000, 2, 0}},
       "section 0 [0x800000, 0x806000) overlaps section 1 [0x805000, 0x807000)"},
  };
  for (const TdvfCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto image = parse(OvmfImageBuilder().tdx_metadata(c.sections).build());
    ASSERT_TRUE(image.ok()) << image.error().message();
    EXPECT_THAT(error_of(image->tdx_metadata()), HasSubstr(c.error));
  }
}

TEST(OvmfImage, RejectsMalformedTdvfDescriptors) {
  OvmfImageBuilder b;
  b.tdx_metadata({{0, 0, 0x800000, 0x1000, 3, 0}});
  const std::size_t at = b.tdvf_descriptor_offset();
  {
    Bytes bytes = b.build();
    bytes[at - 16] ^= 1;
    EXPECT_THAT(error_of(parse(bytes)->tdx_metadata()),
                HasSubstr("expected the TDX metadata GUID e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae"));
  }
  {
    Bytes bytes = b.build();
    bytes[at + 3] = 'X';
    EXPECT_THAT(error_of(parse(bytes)->tdx_metadata()), HasSubstr("expected signature \"TDVF\""));
  }
  {
    Bytes bytes = b.build();
    store_le32(bytes, at + 8, 0);
    EXPECT_THAT(error_of(parse(bytes)->tdx_metadata()), HasSubstr("expected version 1, found 0"));
  }
  {
    Bytes bytes = b.build();
    store_le32(bytes, at + 4, 47);
    EXPECT_THAT(error_of(parse(bytes)->tdx_metadata()),
                HasSubstr("Length 47 is too small for 1 sections (48 bytes)"));
  }
  EXPECT_THAT(error_of(parse(OvmfImageBuilder().reset_eip(1).build())->tdx_metadata()),
              HasSubstr("the firmware has no TDX metadata"));
}

// A metadata list may declare kMaxMetadataSections (64) sections; the count is refused before a
// section is read.
TEST(OvmfImage, MetadataListsHoldAtMostTheSectionLimit) {
  std::vector<SevSectionSpec> sev;
  std::vector<TdvfSectionSpec> tdvf;
  for (std::uint32_t i = 0; i < kMaxMetadataSections; ++i) {
    sev.push_back({0x800000 + i * 0x1000, 0x1000, 1});
    tdvf.push_back({0, 0, 0x800000 + i * 0x1000, 0x1000, 3, 0});
  }
  auto sev_ok = parse(OvmfImageBuilder(0x8000).sev_metadata(sev).build());
  EXPECT_TRUE(sev_ok->sev_metadata().ok());
  auto tdvf_ok = parse(OvmfImageBuilder(0x8000).tdx_metadata(tdvf).build());
  EXPECT_TRUE(tdvf_ok->tdx_metadata().ok());
  sev.push_back({0x900000, 0x1000, 1});
  tdvf.push_back({0, 0, 0x900000, 0x1000, 3, 0});
  EXPECT_THAT(error_of(parse(OvmfImageBuilder(0x8000).sev_metadata(sev).build())->sev_metadata()),
              HasSubstr("SEV metadata at offset 0x7800: 65 sections, more than the 64 a "
                        "metadata list may have"));
  EXPECT_THAT(error_of(parse(OvmfImageBuilder(0x8000).tdx_metadata(tdvf).build())->tdx_metadata()),
              HasSubstr(": 65 sections, more than the 64 a metadata list may have"));
}
}  // namespace
}  // namespace cloister::fw
