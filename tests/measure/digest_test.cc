#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "cloister/common/hex.h"
#include "cloister/measure/reference_values.h"
#include "cloister/measure/snp_digest.h"
#include "cloister/measure/tdx_mrtd.h"

namespace cloister::measure {
namespace {

// PAGE_INFO spelled out byte by byte (SNP ABI Table 67) for one NORMAL page.
TEST(SnpLaunchDigest, OneNormalPageIsShaOfPageInfo) {
  const Bytes page(fw::kPageSize, 0x61);
  const Sha384Digest contents = sha384(page);
  Bytes info(0x70, 0);
  std::memcpy(info.data() + 0x30, contents.data(), 48);
  info[0x60] = 0x70;
  info[0x62] = 1;
  const std::uint64_t gpa = 0xffe00000;
  for (int i = 0; i < 8; ++i) info[0x68 + i] = static_cast<std::uint8_t>(gpa >> (8 * i));

  SnpLaunchDigest gctx;
  gctx.update_page(fw::PageType::kNormal, gpa, page);
  EXPECT_EQ(gctx.digest(), sha384(info));
}

TEST(SnpLaunchDigest, StartsFromTheSeedAndZeroesContentsOfOtherTypes) {
  Sha384Digest seed{};
  seed[0] = 0x42;
  Bytes info(0x70, 0);
  info[0] = 0x42;
  info[0x60] = 0x70;
  info[0x62] = 5;  // SECRETS
  info[0x69] = 0xd0;
  info[0x6a] = 0x80;  // GPA 0x80d000
  SnpLaunchDigest gctx(seed);
  gctx.update(fw::PageType::kSecrets, 0x80d000, Sha384Digest{});
  EXPECT_EQ(gctx.digest(), sha384(info));
}

TEST(SnpLaunchDigest, PlanSkipsSeededOpsAndRejectsTdxPlans) {
  fw::LaunchPlanBuilder b(fw::Tee::kSevSnp);
  Sha384Digest seed{};
  seed[47] = 7;
  b.set_snp_seed(seed);
  b.add({.gpa = 0, .size = fw::kPageSize, .type = fw::PageType::kNormal, .seeded = true});
  b.add({.gpa = 0x1000, .size = 2 * fw::kPageSize, .type = fw::PageType::kZero});
  auto plan = std::move(b).build();
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  SnpLaunchDigest manual(seed);
  manual.update(fw::PageType::kZero, 0x1000, {});
  manual.update(fw::PageType::kZero, 0x2000, {});
  EXPECT_EQ(snp_launch_digest(*plan).value(), manual.digest());

  auto tdx = fw::LaunchPlanBuilder(fw::Tee::kTdx).build();
  ASSERT_TRUE(tdx.ok());
  EXPECT_EQ(snp_launch_digest(*tdx).error().message(),
            "SNP launch digest: the plan is for tdx, not snp");
  EXPECT_EQ(tdx_mrtd(*plan).error().message(), "TDX MRTD: the plan is for snp, not tdx");
}

Bytes record(const char* name, std::uint64_t gpa) {
  Bytes r(128, 0);
  std::memcpy(r.data(), name, std::strlen(name));
  for (int i = 0; i < 8; ++i) r[16 + i] = static_cast<std::uint8_t>(gpa >> (8 * i));
  return r;
}

// One extended page and one added page, both orders, against the record stream built here.
TEST(Mrtd, RecordStreamInBothPageOrders) {
  Bytes contents(2 * fw::kPageSize);
  for (std::size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<std::uint8_t>(i);
  auto plan_with = [&](fw::TdxPageOrder order) {
    fw::LaunchPlanBuilder b(fw::Tee::kTdx);
    b.set_tdx_page_order(order);
    b.add({.gpa = 0xffe00000,
           .size = 2 * fw::kPageSize,
           .type = fw::PageType::kNormal,
           .data = b.keep(contents),
           .tdx_extend = true});
    b.add({.gpa = 0x809000, .size = fw::kPageSize, .type = fw::PageType::kTdHob});
    return std::move(b).build().value();
  };
  auto extend = [&](Bytes& s, std::size_t page) {
    for (std::size_t c = 0; c < 16; ++c) {
      const std::uint64_t gpa = 0xffe00000 + page * fw::kPageSize + c * 256;
      const Bytes r = record("MR.EXTEND", gpa);
      s.insert(s.end(), r.begin(), r.end());
      const auto* chunk = contents.data() + page * fw::kPageSize + c * 256;
      s.insert(s.end(), chunk, chunk + 256);
    }
  };
  auto add = [&](Bytes& s, std::uint64_t gpa) {
    const Bytes r = record("MEM.PAGE.ADD", gpa);
    s.insert(s.end(), r.begin(), r.end());
  };
  Bytes single, two;
  add(single, 0xffe00000);
  extend(single, 0);
  add(single, 0xffe01000);
  extend(single, 1);
  add(single, 0x809000);
  add(two, 0xffe00000);
  add(two, 0xffe01000);
  extend(two, 0);
  extend(two, 1);
  add(two, 0x809000);
  EXPECT_EQ(tdx_mrtd(plan_with(fw::TdxPageOrder::kSinglePass)).value(), sha384(single));
  EXPECT_EQ(tdx_mrtd(plan_with(fw::TdxPageOrder::kTwoPass)).value(), sha384(two));
}

TEST(ReferenceValues, PolicyShapeForEachTee) {
  Sha384Digest d{};
  d[0] = 0xab;
  const std::string hex = to_hex(d);
  EXPECT_EQ(nlohmann::json::parse(reference_values_policy(fw::Tee::kSevSnp, std::span(&d, 1))),
            nlohmann::json::parse(R"({"snp": {"measurements": [")" + hex + R"("]}})"));
  EXPECT_EQ(nlohmann::json::parse(reference_values_policy(fw::Tee::kTdx, std::span(&d, 1))),
            nlohmann::json::parse(R"({"tdx": {"mr_td": [")" + hex + R"("]}})"));
  EXPECT_EQ(reference_values_policy(fw::Tee::kSevSnp, std::span(&d, 1)).back(), '\n');
}

}  // namespace
}  // namespace cloister::measure
