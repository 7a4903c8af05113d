#include "cloister/common/file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace cloister {
namespace {

TEST(File, AtomicWriteThenRead) {
  auto dir =
      std::filesystem::temp_directory_path() /
      ("cloister-file-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  auto path = dir / "data.bin";
  const Bytes data = {1, 2, 3, 0, 255};
  ASSERT_TRUE(write_file_atomic(path, data));
  EXPECT_EQ(*read_file(path), data);
  EXPECT_EQ(*read_text_file(path), std::string("\x01\x02\x03\x00\xff", 5));
  std::filesystem::remove_all(dir);
}

TEST(File, ReadsLargeFilesWhole) {
  auto dir = std::filesystem::temp_directory_path() /
             ("cloister-file-large-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "large.bin";
  Bytes data(3 * 65536 + 17);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31 + 7);
  ASSERT_TRUE(write_file_atomic(path, data));
  EXPECT_EQ(*read_file(path), data);
  std::filesystem::remove_all(dir);
}

// Files whose stat size is not their content (procfs reports 0) are read to their end.
TEST(File, ReadsFilesWhoseStatSizeIsZero) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) GTEST_SKIP() << "/proc is not mounted: no zero-size file to read";
  const std::string expected{std::istreambuf_iterator<char>(in), {}};
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(std::filesystem::file_size("/proc/self/cmdline"), 0u);
  const auto text = read_text_file("/proc/self/cmdline");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, expected);
}

TEST(File, CacheFileCreatesItsDirectories) {
  auto dir = std::filesystem::temp_directory_path() /
             ("cloister-file-cache-" + std::to_string(::getpid()));
  const Bytes data = {0xca, 0xfe};
  ASSERT_TRUE(write_cache_file(dir / "vcek" / "v1" / "Genoa" / "x.der", data));
  EXPECT_EQ(*read_file(dir / "vcek" / "v1" / "Genoa" / "x.der"), data);
  // A regular file where a directory must go: the error names the directory.
  ASSERT_TRUE(write_cache_file(dir / "x.der", data));
  auto blocked = write_cache_file(dir / "x.der" / "y.der", data);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().message().rfind(
                "cannot create cache directory " + (dir / "x.der").string(), 0),
            0u)
      << blocked.error().message();
  std::filesystem::remove_all(dir);
}

TEST(File, MissingFileNamesPathAndReason) {
  auto r = read_file("/nonexistent/cloister/file");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "cannot read /nonexistent/cloister/file: No such file or directory");
  auto d = read_file("/");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message(), "cannot read /: Is a directory");
}

}  // namespace
}  // namespace cloister
