#include "cloister/common/time.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

TEST(Time, ParsesUtcAndOffsets) {
  EXPECT_EQ(*parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  // 1763700000 is the pinned time MANIFEST.md uses for the SNP chains.
  EXPECT_EQ(*parse_rfc3339("2025-11-21T04:40:00Z"), 1763700000);
  EXPECT_EQ(*parse_rfc3339("2025-11-21T06:40:00+02:00"), 1763700000);
  EXPECT_EQ(*parse_rfc3339("2025-11-20T23:40:00.999-05:00"), 1763700000);
  EXPECT_EQ(*parse_rfc3339("2025-11-21"), 1763683200);
  EXPECT_EQ(*parse_rfc3339("2024-02-29t12:00:00z"), 1709208000);
}

TEST(Time, RejectsMalformedWithReason) {
  EXPECT_NE(parse_rfc3339("2025-13-01T00:00:00Z").error().message().find("month out of range"),
            std::string::npos);
  EXPECT_NE(parse_rfc3339("2023-02-29T00:00:00Z").error().message().find("day out of range"),
            std::string::npos);
  EXPECT_NE(parse_rfc3339("2025-11-21T00:00:00").error().message().find("missing time zone"),
            std::string::npos);
  EXPECT_FALSE(parse_rfc3339("yesterday"));
  EXPECT_FALSE(parse_rfc3339("2025-11-21T00:00:00Zjunk"));
  EXPECT_FALSE(parse_rfc3339("2025-11-21T25:00:00Z"));
}

TEST(Time, FormatsAndRoundTrips) {
  EXPECT_EQ(format_rfc3339(1763700000), "2025-11-21T04:40:00Z");
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59Z");
  for (UnixTime t : {951782400LL, 2524607999LL, 4102444800LL})
    EXPECT_EQ(*parse_rfc3339(format_rfc3339(t)), t);
}

}  // namespace
}  // namespace cloister
