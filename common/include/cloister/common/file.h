// Whole-file reads and writes with errors that name the path and the OS reason.
#pragma once

#include <filesystem>
#include <string>

#include "cloister/common/bytes.h"

namespace cloister {

Result<Bytes> read_file(const std::filesystem::path& path);
Result<std::string> read_text_file(const std::filesystem::path& path);

// Writes via a temporary file in the same directory and rename(), so readers never see a
// partial file.
Status write_file_atomic(const std::filesystem::path& path, ByteView data);

// A cache entry: write_file_atomic() after creating the missing directories above `path`.
Status write_cache_file(const std::filesystem::path& path, ByteView data);

}  // namespace cloister
