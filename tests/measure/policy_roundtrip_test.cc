// cloister-measure's --policy-out is the tenant's input to verify-report --policy: what the one
// writes, the other must read, with the same values.
#include <gtest/gtest.h>

#include "cloister/common/hex.h"
#include "cloister/measure/reference_values.h"
#include "cloister/policy/policy.h"

namespace cloister::measure {
namespace {

TEST(ReferenceValuesPolicy, SnpMeasurementsParseInTheVerifiersPolicy) {
  Sha384Digest a{}, b{};
  a.fill(0x11);
  b.fill(0xab);
  std::vector<Sha384Digest> digests = {a, b};
  auto policy = policy::parse_policy(reference_values_policy(fw::Tee::kSevSnp, digests));
  ASSERT_TRUE(policy) << policy.error().message();
  ASSERT_TRUE(policy->snp.has_value());
  ASSERT_EQ(policy->snp->measurements.size(), 2u);
  EXPECT_EQ(to_hex(policy->snp->measurements[0]), to_hex(a));
  EXPECT_EQ(to_hex(policy->snp->measurements[1]), to_hex(b));
  // Everything else keeps the secure defaults.
  EXPECT_FALSE(policy->snp->guest_policy.allow_debug);
  EXPECT_EQ(policy->snp->vmpls, std::vector<std::uint32_t>{0});
}

TEST(ReferenceValuesPolicy, TdxMrtdParsesInTheVerifiersPolicy) {
  Sha384Digest mrtd{};
  mrtd.fill(0x5c);
  std::vector<Sha384Digest> digests = {mrtd};
  auto policy = policy::parse_policy(reference_values_policy(fw::Tee::kTdx, digests));
  ASSERT_TRUE(policy) << policy.error().message();
  ASSERT_TRUE(policy->tdx.has_value());
  ASSERT_EQ(policy->tdx->mr_td.size(), 1u);
  EXPECT_EQ(to_hex(policy->tdx->mr_td[0]), to_hex(mrtd));
}

}  // namespace
}  // namespace cloister::measure
