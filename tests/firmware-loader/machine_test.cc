// The guest RAM split and memory sizes that cloister-vmm and the launch plans share.
#include "cloister/firmware_loader/machine.h"

#include <gtest/gtest.h>

namespace cloister::fw {
namespace {

TEST(Machine, RamBelowTheMmioGapThenFromFourGiB) {
  EXPECT_TRUE(ram_ranges(0).empty());
  EXPECT_EQ(ram_ranges(64ull << 20), (std::vector<GpaRange>{{0, 64ull << 20}}));
  EXPECT_EQ(ram_ranges(0xc0000000), (std::vector<GpaRange>{{0, 0xc0000000}}));
  EXPECT_EQ(ram_ranges(5ull << 30),
            (std::vector<GpaRange>{{0, 0xc0000000}, {1ull << 32, (5ull << 30) - 0xc0000000}}));
}

TEST(Machine, MemorySizes) {
  EXPECT_EQ(*parse_memory_size("512M"), 512ull << 20);
  EXPECT_EQ(*parse_memory_size("2G"), 2ull << 30);
  EXPECT_EQ(*parse_memory_size("65536K"), 64ull << 20);
  EXPECT_EQ(*parse_memory_size("4194304"), 4ull << 20);
  EXPECT_EQ(*parse_memory_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_memory_size("").error().message(),
            "memory: expected a size like 512M, 2G or a byte count, found \"\"");
  EXPECT_FALSE(parse_memory_size("M").ok());
  EXPECT_FALSE(parse_memory_size("-1M").ok());
  EXPECT_EQ(parse_memory_size("4T").error().message(),
            "memory: unknown size suffix \"T\" (expected K, M or G)");
  EXPECT_EQ(parse_memory_size("17179869184G").error().message(),
            "memory: \"17179869184G\" overflows 64 bits");
}

}  // namespace
}  // namespace cloister::fw
