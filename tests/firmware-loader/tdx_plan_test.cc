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
