#include "cloister/firmware_loader/launch_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloister/firmware_loader/vmsa.h"
#include "test_util.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::error_of;
using ::testing::HasSubstr;

LaunchOp page(std::uint64_t gpa, PageType type = PageType::kNormal,
              std::uint64_t size = kPageSize) {
  return LaunchOp{.gpa = gpa, .size = size, .type = type, .label = "test page"};
}

ByteView vmsa(LaunchPlanBuilder& b, std::uint64_t features) {
  VmsaRegisters r;
  r.sev_features = features;
  const VmsaPage p = encode_vmsa(r);
  return b.keep(Bytes(p.begin(), p.end()));
}

TEST(LaunchPlan, ForEachPageZeroPadsPartialData) {
  LaunchPlanBuilder b(Tee::kSevSnp);
  Bytes data(kPageSize + 10, 0xab);
  LaunchOp op = page(0x10000, PageType::kNormal, 3 * kPageSize);
  op.data = b.keep(data);
  b.add(op);
  auto plan = std::move(b).build();
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  std::vector<std::pair<std::uint64_t, Bytes>> seen;
  for_each_page(plan->ops()[0], [&](std::uint64_t gpa, ByteView p) {
    seen.emplace_back(gpa, Bytes(p.begin(), p.end()));
  });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].first, 0x10000u);
  EXPECT_EQ(seen[0].second, Bytes(kPageSize, 0xab));
  EXPECT_EQ(seen[1].first, 0x11000u);
  EXPECT_TRUE(std::all_of(seen[1].second.begin(), seen[1].second.begin() + 10,
                          [](std::uint8_t x) { return x == 0xab; }));
  EXPECT_TRUE(is_all_zero(ByteView(seen[1].second).subspan(10)));
  EXPECT_TRUE(is_all_zero(seen[2].second));
  for (const auto& [gpa, bytes] : seen) EXPECT_EQ(bytes.size(), kPageSize);
}

TEST(LaunchPlan, CopiesKeepTheContentsAlive) {
  std::optional<LaunchPlan> copy;
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    LaunchOp op = page(0);
    op.data = b.keep(Bytes(kPageSize, 0x42));
    b.add(op);
    auto plan = std::move(b).build();
    ASSERT_TRUE(plan.ok());
    copy = *plan;
  }
  EXPECT_EQ(copy->ops()[0].data[kPageSize - 1], 0x42);
}

TEST(LaunchPlan, RejectsMisshapenOps) {
  struct Case {
    const char* name;
    LaunchOp op;
    const char* error;
  };
  LaunchOp too_much = page(0);
  const Bytes two_pages(2 * kPageSize, 1);
  too_much.data = two_pages;
  LaunchOp zero_with_data = page(0, PageType::kZero);
  zero_with_data.data = ByteView(two_pages).subspan(0, 8);
  LaunchOp extend = page(0);
  extend.tdx_extend = true;
  const Case cases[] = {
      {"unaligned gpa", page(0x800), "must be 4 KiB aligned"},
      {"empty", page(0, PageType::kNormal, 0), "the size non-zero"},
      {"beyond 52 bits", page(kMaxGpa - kPageSize, PageType::kNormal, 2 * kPageSize),
       "beyond the 52-bit guest-physical space"},
      {"data too big", too_much, "0x2000 bytes of data do not fit"},
      {"zero page with data", zero_with_data, "this page type carries no data, found 0x8 bytes"},
      {"td hob in snp", page(0, PageType::kTdHob), "page type td-hob does not exist for snp"},
      {"extend in snp", extend, "MR.EXTEND is a TDX operation"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add(c.op);
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr(c.error));
  }
  LaunchPlanBuilder tdx(Tee::kTdx);
  tdx.add(page(0, PageType::kVmsa));
  EXPECT_THAT(error_of(std::move(tdx).build()), HasSubstr("page type vmsa does not exist for tdx"));
}

TEST(LaunchPlan, RejectsOverlappingOpsNamingBoth) {
  LaunchPlanBuilder b(Tee::kTdx);
  LaunchOp first = page(0x800000, PageType::kZero, 0x6000);
  first.label = "temp";
  LaunchOp second = page(0x805000, PageType::kTdHob);
  second.label = "hob";
  b.add(first).add(second);
  auto r = std::move(b).build();
  EXPECT_THAT(error_of(r), HasSubstr("launch op 1 (hob, td-hob at GPA 0x805000, size 0x1000) "
                                     "overlaps launch op 0 (temp, zero at GPA 0x800000"));
}

TEST(LaunchPlan, VmsasComeLastInVcpuOrderWithOneFeatureSet) {
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add({.gpa = kSnpVmsaGpa, .size = kPageSize, .type = PageType::kVmsa, .data = vmsa(b, 1)});
    b.add(page(0));
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("follows a VMSA"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add({.gpa = kSnpVmsaGpa,
           .size = kPageSize,
           .type = PageType::kVmsa,
           .data = vmsa(b, 1),
           .vcpu = 1});
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("expected vCPU 0, found 1"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add({.gpa = 0x1000, .size = kPageSize, .type = PageType::kVmsa, .data = vmsa(b, 1)});
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("at GPA 0xfffffffff000"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add({.gpa = kSnpVmsaGpa, .size = kPageSize, .type = PageType::kVmsa, .data = vmsa(b, 1)});
    b.add({.gpa = kSnpVmsaGpa,
           .size = kPageSize,
           .type = PageType::kVmsa,
           .data = vmsa(b, 0x21),
           .vcpu = 1});
    EXPECT_THAT(error_of(std::move(b).build()),
                HasSubstr("SEV_FEATURES 0x21 differs from vCPU 0's 0x1"));
  }
  LaunchPlanBuilder b(Tee::kSevSnp);
  b.add(page(0));
  for (std::uint32_t v = 0; v < 2; ++v) {
    b.add({.gpa = kSnpVmsaGpa,
           .size = kPageSize,
           .type = PageType::kVmsa,
           .data = vmsa(b, 0x5),
           .vcpu = v});
  }
  auto plan = std::move(b).build();
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->vcpu_count(), 2u);
  EXPECT_EQ(plan->snp().vmsa_features, 0x5u);
}

TEST(LaunchPlan, SeededOpsNeedASeedAndComeFirst) {
  LaunchOp seeded = page(0x10000);
  seeded.seeded = true;
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add(seeded);
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("the plan has none"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.set_snp_seed({}).add(page(0)).add(seeded);
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("must come first"));
  }
  LaunchPlanBuilder tdx(Tee::kTdx);
  tdx.set_snp_seed({});
  EXPECT_THAT(error_of(std::move(tdx).build()), HasSubstr("a TDX plan cannot have an SNP seed"));
  LaunchPlanBuilder snp(Tee::kSevSnp);
  snp.set_tdx_page_order(TdxPageOrder::kTwoPass);
  EXPECT_THAT(error_of(std::move(snp).build()), HasSubstr("an SNP plan has no TDX page order"));
}

TEST(LaunchPlan, ParameterAreasAndParameters) {
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add_parameter_area({3, 0x1800, {}});
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("parameter area 3 has size 0x1800"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add_parameter_area({3, 0x1000, {}}).add_parameter_area({3, 0x1000, {}});
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("declared twice"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add_parameter({IgvmParameterKind::kMemoryMap, 9, 0});
    EXPECT_THAT(error_of(std::move(b).build()),
                HasSubstr("parameter memory_map at offset 0x0 of parameter area 9, which is not"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add_parameter_area({1, 0x1000, {}}).add_parameter({IgvmParameterKind::kVpCount, 1, 0x1000});
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("beyond the area's 0x1000 bytes"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add_parameter_area({1, 0x1000, {}});
    LaunchOp op = page(0, PageType::kUnmeasured, 0x2000);
    op.parameter_area = 1;
    b.add(op);
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("inserts parameter area 1"));
  }
  {
    LaunchPlanBuilder b(Tee::kSevSnp);
    b.add_required_memory({0x1000, 0x800});
    EXPECT_THAT(error_of(std::move(b).build()), HasSubstr("required memory [0x1000, +0x800)"));
  }
  LaunchPlanBuilder b(Tee::kSevSnp);
  b.add_parameter_area({1, 0x1000, {}}).add_parameter({IgvmParameterKind::kVpCount, 1, 8});
  LaunchOp op = page(0x2000, PageType::kUnmeasured);
  op.parameter_area = 1;
  b.add(op).add_required_memory({0, 0x100000});
  auto plan = std::move(b).build();
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->parameters().size(), 1u);
  EXPECT_EQ(plan->required_memory()[0].size, 0x100000u);
}

TEST(LaunchPlan, SnpPageTypeCodesAreTheFirmwareValues) {
  EXPECT_EQ(snp_page_type_code(PageType::kNormal), 1);
  EXPECT_EQ(snp_page_type_code(PageType::kVmsa), 2);
  EXPECT_EQ(snp_page_type_code(PageType::kZero), 3);
  EXPECT_EQ(snp_page_type_code(PageType::kUnmeasured), 4);
  EXPECT_EQ(snp_page_type_code(PageType::kSecrets), 5);
  EXPECT_EQ(snp_page_type_code(PageType::kCpuid), 6);
}

// Every page a plan populates costs the loader a copy and the measurement a hash: a plan may
// populate kMaxLaunchMemory (1 GiB), and the op that goes beyond it is named.
TEST(LaunchPlan, PopulatesAtMostTheLaunchMemoryLimit) {
  LaunchPlanBuilder at_limit(Tee::kSevSnp);
  at_limit.add(page(0, PageType::kZero, kMaxLaunchMemory / 2))
      .add(page(kMaxLaunchMemory, PageType::kUnmeasured, kMaxLaunchMemory / 2));
  EXPECT_TRUE(std::move(at_limit).build().ok());
  LaunchPlanBuilder over(Tee::kSevSnp);
  over.add(page(0, PageType::kZero, kMaxLaunchMemory / 2))
      .add(page(kMaxLaunchMemory, PageType::kUnmeasured, kMaxLaunchMemory / 2 + kPageSize));
  EXPECT_EQ(error_of(std::move(over).build()),
            "launch op 1 (test page, unmeasured at GPA 0x40000000, size 0x20001000): brings the "
            "memory the plan puts in place before the guest runs to 0x40001000 bytes, more than "
            "the 1 GiB a launch may populate (fw::kMaxLaunchMemory)");
}
}  // namespace
}  // namespace cloister::fw
