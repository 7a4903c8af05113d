// Locating the shared real-world test vectors (../shared/vectors beside the checkout).
//
// Lookup order: $CLOISTER_VECTORS, then the CMake option CLOISTER_VECTORS_DIR (passed to tests
// as $CLOISTER_VECTORS_DEFAULT). Tests that need vectors skip with a message naming both.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"

namespace cloister::testing {

// Test data files (vectors, corpus files, files a test wrote) that have no format limit of their
// own: all are far smaller.
inline constexpr FileLimit kTestFileLimit{64u << 20, "a test data file can be"};

// The vectors directory if it exists.
std::optional<std::filesystem::path> vectors_dir();

// vectors_dir()/relative if that file or directory exists.
std::optional<std::filesystem::path> vector_path(const std::string& relative);

// Reads a vector file; fails the test (not skips) if it exists but cannot be read.
Bytes read_vector(const std::filesystem::path& path);

std::string vectors_missing_message(const std::string& relative);

}  // namespace cloister::testing

// Declares `var` as the path of vectors_dir()/relative, or skips the test with a clear message.
#define CLOISTER_REQUIRE_VECTOR(var, relative)                                            \
  const auto var##_opt = ::cloister::testing::vector_path(relative);                      \
  if (!var##_opt) GTEST_SKIP() << ::cloister::testing::vectors_missing_message(relative); \
  const std::filesystem::path var = *var##_opt
