#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloister/firmware_loader/tdx.h"
#include "ovmf_builder.h"
#include "test_util.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::error_of;
using ::cloister::testing::image_of;
using ::cloister::testing::OvmfImageBuilder;
using ::cloister::testing::TdvfSectionSpec;
using ::testing::HasSubstr;

TEST(TdxPlan, OneOpPerSectionInMetadataOrder) {
  OvmfImageBuilder b(0x4000);
  // BFV covers the image's last 8 KiB but reserves 12 KiB of memory; CFV the first 4 KiB.
  b.tdx_metadata({{0x2000, 0x2000, 0xffffd000, 0x3000, 0, 1},
                  {0x0, 0x1000, 0xffffc000, 0x1000, 1, 0},
                  {0, 0, 0x809000, 0x2000, 2, 0},
                  {0, 0, 0x800000, 0x6000, 3, 0},
                  {0, 0, 0x900000, 0x1000, 4, 2}});
  const OvmfImage image = image_of(b);
  auto plan = build_tdx_plan(image, {TdxPageOrder::kTwoPass});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->tee(), Tee::kTdx);
  EXPECT_EQ(plan->tdx_page_order(), TdxPageOrder::kTwoPass);
  const auto ops = plan->ops();
  ASSERT_EQ(ops.size(), 4u) << "the PAGE.AUG section is not added at launch";
  EXPECT_EQ(ops[0].type, PageType::kNormal);
  EXPECT_TRUE(ops[0].tdx_extend);
  EXPECT_EQ(ops[0].size, 0x3000u);
  EXPECT_EQ(ops[0].data.data(), image.bytes().data() + 0x2000);
  EXPECT_EQ(ops[0].data.size(), 0x2000u);
  EXPECT_EQ(ops[1].type, PageType::kNormal);
  EXPECT_FALSE(ops[1].tdx_extend);
  EXPECT_EQ(ops[2].type, PageType::kTdHob);
  EXPECT_EQ(ops[2].gpa, 0x809000u);
  EXPECT_EQ(ops[3].type, PageType::kZero);
  EXPECT_TRUE(ops[3].data.empty());
}

OvmfImage debian_like_tdvf() {
  return image_of(::cloister::testing::tdvf_like_image());
}

ByteView td_hob_of(const LaunchPlan& plan) {
  for (const LaunchOp& op : plan.ops())
    if (op.type == PageType::kTdHob) return op.data;
  ADD_FAILURE() << "no TD HOB op";
  return {};
}

// One EFI_HOB_RESOURCE_DESCRIPTOR (PI spec vol. 3 §5.5) at `at`.
void expect_resource(ByteView hob, std::size_t at, std::uint32_t type, std::uint64_t start,
                     std::uint64_t length) {
  SCOPED_TRACE("resource descriptor at " + std::to_string(at));
  EXPECT_EQ(load_le16(hob, at), 0x0003);              // HobType RESOURCE_DESCRIPTOR
  EXPECT_EQ(load_le16(hob, at + 2), 48);              // HobLength
  EXPECT_EQ(load_le32(hob, at + 4), 0u);              // Reserved
  EXPECT_TRUE(is_all_zero(hob.subspan(at + 8, 16)));  // Owner
  EXPECT_EQ(load_le32(hob, at + 24), type);           // ResourceType: 0 system memory, 7 unaccepted
  EXPECT_EQ(load_le32(hob, at + 28), 0x7u);           // PRESENT | INITIALIZED | TESTED
  EXPECT_EQ(load_le64(hob, at + 32), start);          // PhysicalStart
  EXPECT_EQ(load_le64(hob, at + 40), length);         // ResourceLength
}

// The PHIT (§5.3) at 0, and the Cloister vCPU-count GUID HOB (§5.6) and the end of the list at
// `at`; the list is `at` + 40 bytes long.
void expect_frame(ByteView hob, std::size_t at, std::uint32_t vcpus) {
  ASSERT_EQ(hob.size(), at + 40);
  EXPECT_EQ(load_le16(hob, 0), 0x0001);  // HobType HANDOFF
  EXPECT_EQ(load_le16(hob, 2), 56);
  EXPECT_EQ(load_le32(hob, 4), 0u);
  EXPECT_EQ(load_le32(hob, 8), 9u);                       // Version: EFI_HOB_HANDOFF_TABLE_VERSION
  EXPECT_EQ(load_le32(hob, 12), 0u);                      // BootMode: BOOT_WITH_FULL_CONFIGURATION
  EXPECT_TRUE(is_all_zero(hob.subspan(16, 32)));          // EfiMemoryTop .. EfiFreeMemoryBottom
  EXPECT_EQ(load_le64(hob, 48), 0x809000u + hob.size());  // EfiEndOfHobList
  EXPECT_EQ(load_le16(hob, at), 0x0004);                  // HobType GUID_EXTENSION
  EXPECT_EQ(load_le16(hob, at + 2), 32);
  EXPECT_EQ(load_le32(hob, at + 4), 0u);
  EXPECT_EQ(Guid::from_stored(hob.subspan(at + 8, 16)).to_string(),
            "655015f6-543e-49c2-a692-de107dba45c1");
  EXPECT_EQ(load_le32(hob, at + 24), vcpus);
  EXPECT_EQ(load_le32(hob, at + 28), 0u);
  EXPECT_EQ(load_le16(hob, at + 32), 0xffff);  // END_OF_HOB_LIST
  EXPECT_EQ(load_le16(hob, at + 34), 8);
  EXPECT_EQ(load_le32(hob, at + 36), 0u);
}

// The RAM below 0x820000 as Debian's sections carve it: the TD_HOB and TempMem sections are
// accepted (system memory), the gaps between them unaccepted; returns the next offset.
std::size_t expect_low_sections(ByteView hob) {
  expect_resource(hob, 56 + 0 * 48, 7, 0x0, 0x800000);
  expect_resource(hob, 56 + 1 * 48, 0, 0x800000, 0x6000);
  expect_resource(hob, 56 + 2 * 48, 7, 0x806000, 0x3000);
  expect_resource(hob, 56 + 3 * 48, 0, 0x809000, 0x2000);
  expect_resource(hob, 56 + 4 * 48, 0, 0x80b000, 0x2000);
  expect_resource(hob, 56 + 5 * 48, 7, 0x80d000, 0x3000);
  expect_resource(hob, 56 + 6 * 48, 0, 0x810000, 0x10000);
  return 56 + 7 * 48;
}

TEST(TdHob, SixtyFourMiBOneVcpu) {
  auto plan = build_tdx_plan(debian_like_tdvf(), {.ram_bytes = 64ull << 20, .vcpus = 1});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->vcpu_count(), 1u);
  const ByteView hob = td_hob_of(*plan);
  const std::size_t at = expect_low_sections(hob);
  expect_resource(hob, at, 7, 0x820000, (64ull << 20) - 0x820000);
  expect_frame(hob, at + 48, 1);
}

TEST(TdHob, SixGiBFourVcpusSplitsAroundTheMmioGap) {
  auto plan = build_tdx_plan(debian_like_tdvf(), {.ram_bytes = 6ull << 30, .vcpus = 4});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->vcpu_count(), 4u);
  const ByteView hob = td_hob_of(*plan);
  const std::size_t at = expect_low_sections(hob);
  expect_resource(hob, at, 7, 0x820000, 0xc0000000 - 0x820000);
  expect_resource(hob, at + 48, 7, 1ull << 32, (6ull << 30) - 0xc0000000);
  expect_frame(hob, at + 96, 4);
}

TEST(TdHob, OnlyTheVcpuCountChangesWithTheVcpuCount) {
  auto one = build_tdx_plan(debian_like_tdvf(), {.vcpus = 1});
  auto two = build_tdx_plan(debian_like_tdvf(), {.vcpus = 2});
  ASSERT_TRUE(one.ok() && two.ok());
  Bytes a(td_hob_of(*one).begin(), td_hob_of(*one).end());
  const Bytes b(td_hob_of(*two).begin(), td_hob_of(*two).end());
  ASSERT_EQ(a.size(), b.size());
  store_le32(a, a.size() - 40 + 24, 2);
  EXPECT_EQ(a, b);
}

TEST(TdHob, SectionsMustLieInGuestRam) {
  EXPECT_EQ(error_of(build_tdx_plan(debian_like_tdvf(), {.ram_bytes = 0x80a000})),
            "TDVF section 2 (TempMem) at [0x810000, 0x820000) is not inside guest RAM "
            "[0x0, 0x80a000): TDVF expects it as accepted RAM; give the guest more memory "
            "(--memory)");
  EXPECT_TRUE(build_tdx_plan(debian_like_tdvf(), {.ram_bytes = 0x820000}).ok());
}

TEST(TdHob, RejectsBadOptions) {
  EXPECT_EQ(error_of(build_tdx_plan(debian_like_tdvf(), {.vcpus = 0})),
            "zero vCPUs: a TD needs at least one; give --vcpus N (N >= 1)");
  EXPECT_THAT(error_of(build_tdx_plan(debian_like_tdvf(), {.ram_bytes = 0x1000001})),
              HasSubstr("guest memory 0x1000001 bytes: expected a non-zero multiple of 4 KiB up "
                        "to 0x10000000000 (1 TiB)"));
  EXPECT_THAT(error_of(build_tdx_plan(debian_like_tdvf(), {.ram_bytes = 0})),
              HasSubstr("guest memory 0x0 bytes"));
  EXPECT_THAT(error_of(build_tdx_plan(debian_like_tdvf(), {.ram_bytes = (1ull << 40) + 4096})),
              HasSubstr("guest memory 0x10000001000 bytes"));
}

TEST(TdHob, NeedsExactlyOneTdHobSection) {
  OvmfImageBuilder none(0x4000);
  none.tdx_metadata({{0x2000, 0x2000, 0xffffe000, 0x2000, 0, 1}});
  EXPECT_THAT(error_of(build_tdx_plan(image_of(none))),
              HasSubstr("has 0 TD_HOB sections, expected exactly one that is added at launch"));
  OvmfImageBuilder two(0x4000);
  two.tdx_metadata({{0, 0, 0x809000, 0x1000, 2, 0}, {0, 0, 0x80a000, 0x1000, 2, 0}});
  EXPECT_THAT(error_of(build_tdx_plan(image_of(two))), HasSubstr("has 2 TD_HOB sections"));
}

// 44 one-page TempMem sections, each between unaccepted gaps, need 91 resource descriptors:
// more than the 4 KiB TD_HOB section holds.
TEST(TdHob, MustFitItsSection) {
  std::vector<TdvfSectionSpec> sections{{0, 0, 0x100000, 0x1000, 2, 0}};
  for (std::uint64_t i = 0; i < 44; ++i)
    sections.push_back({0, 0, 0x200000 + i * 0x2000, 0x1000, 3, 0});
  OvmfImageBuilder b(0x4000);
  b.tdx_metadata(sections);
  EXPECT_EQ(error_of(build_tdx_plan(image_of(b))),
            "TDVF section 0 (TD_HOB): the TD HOB for this memory map is 0x1170 bytes, more than "
            "the 0x1000-byte TD_HOB section at GPA 0x100000 holds");
}

TEST(TdxPlan, RejectsFirmwareWithoutTdxMetadata) {
  auto r = build_tdx_plan(image_of(OvmfImageBuilder().reset_eip(0x808004)));
  EXPECT_THAT(error_of(r), HasSubstr("the firmware has no TDX metadata (no TDVF footer entry"));
}

TEST(TdxPlan, RejectsPayloadSections) {
  OvmfImageBuilder b(0x4000);
  b.tdx_metadata({{0, 0, 0x1000000, 0x1000, 5, 0}});
  EXPECT_THAT(error_of(build_tdx_plan(image_of(b))),
              HasSubstr("payload sections are filled by a TD-shim launcher"));
}

TEST(TdxPlan, PassesMetadataErrorsThrough) {
  OvmfImageBuilder b(0x4000);
  b.tdx_metadata({{0x3000, 0x2000, 0xffffe000, 0x2000, 0, 1}});
  EXPECT_THAT(error_of(build_tdx_plan(image_of(b))),
              HasSubstr("DataOffset 0x3000 + RawDataSize 0x2000 exceeds the 0x4000-byte image"));
}

}  // namespace
}  // namespace cloister::fw
