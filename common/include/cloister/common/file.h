// Whole-file reads and writes with errors that name the path and the OS reason.
#pragma once

#include <filesystem>
#include <string>

#include "cloister/common/bytes.h"

namespace cloister {

Result<Bytes> read_file(const std::filesystem::path& path);
Result<std::string> read_text_file(const std::filesystem::path& path);

// Writes via a temporary file in the same directory and rename(), so readers never see a
// partial file. The file is created with `mode` (less the umask): 0600 for private keys.
Status write_file_atomic(const std::filesystem::path& path, ByteView data, unsigned mode = 0644);

// A cache entry: write_file_atomic() after creating the missing directories above `path`.
Status write_cache_file(const std::filesystem::path& path, ByteView data);

}  // namespace cloister
