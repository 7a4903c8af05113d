#include "cloister/common/file.h"

#include <gtest/gtest.h>

#include <filesystem>

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
