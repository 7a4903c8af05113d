#include "cloister/firmware_loader/guid.h"

#include <gtest/gtest.h>

#include "cloister/common/hex.h"

namespace cloister::fw {
namespace {

// The OVMF footer GUID as edk2 stores it (Python uuid.UUID(...).bytes_le).
TEST(Guid, LiteralStoresEfiMixedEndianBytes) {
  constexpr Guid footer = Guid::literal("96b582de-1fb2-45f7-baea-a366c55a082d");
  EXPECT_EQ(to_hex(footer.bytes()), "de82b596b21ff745baeaa366c55a082d");
  EXPECT_EQ(footer.to_string(), "96b582de-1fb2-45f7-baea-a366c55a082d");
}

TEST(Guid, ParseAcceptsEitherCaseAndRoundTrips) {
  auto g = Guid::parse("E47A6535-984A-4798-865E-4685A7BF8EC2");
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(*g, Guid::literal("e47a6535-984a-4798-865e-4685a7bf8ec2"));
  EXPECT_EQ(Guid::from_stored(g->bytes()), *g);
}

TEST(Guid, ParseNamesTheProblem) {
  auto short_text = Guid::parse("e47a6535-984a");
  ASSERT_FALSE(short_text.ok());
  EXPECT_NE(short_text.error().message().find("expected 36 characters, found 13"),
            std::string::npos);
  auto dash = Guid::parse("e47a6535x984a-4798-865e-4685a7bf8ec2");
  ASSERT_FALSE(dash.ok());
  EXPECT_NE(dash.error().message().find("'-' at position 8"), std::string::npos);
  auto digit = Guid::parse("e47a6535-984a-4798-865e-4685a7bf8eZ2");
  ASSERT_FALSE(digit.ok());
  EXPECT_NE(digit.error().message().find("non-hex character 'Z'"), std::string::npos);
}

}  // namespace
}  // namespace cloister::fw
