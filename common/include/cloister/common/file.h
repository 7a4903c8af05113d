// Whole-file reads bounded by the file's format, and atomic writes, with errors that name the
// path and the reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"

namespace cloister {

// The most bytes a file of one format may hold, and the words that explain it. Every reader
// states its format's limit as a named constant next to the format's parser (docs/developing.md,
// "Input limits"); there is no unbounded read.
struct FileLimit {
  std::uint64_t max_bytes;
  // Completes "<path>: <n> bytes, larger than the <max_bytes> ": what the format is and why it
  // cannot be larger, e.g. "an SEV-SNP report with its certificate table can be (a report is
  // 1184 bytes)".
  std::string_view format;

  // Fails when `size` bytes exceed the limit, in the words read_file() uses: "<name>: <size>
  // bytes, larger than the <max_bytes> <format>". For inputs that arrive in memory (an SDK
  // caller's buffer) rather than as a file.
  Status check(std::string_view name, std::uint64_t size) const;
};

// "1 MiB", "16 KiB", "3 GiB" for exact binary multiples, otherwise "1184 bytes".
std::string size_in_words(std::uint64_t bytes);

// Reads the whole regular file at `path`, of at most limit.max_bytes bytes.
//  * Opened with O_NONBLOCK | O_NOCTTY | O_CLOEXEC, so opening a FIFO never blocks; anything but
//    a regular file (a directory, a device such as /dev/zero, a FIFO, a socket) is refused
//    before a byte is read, naming what it is.
//  * A file whose size fstat(2) reports beyond the limit is refused without being read (a 1 GiB
//    sparse file costs nothing); a file that grows past the limit while it is read is refused
//    once limit.max_bytes + 1 bytes have arrived. Files whose size fstat(2) does not know
//    (procfs reports 0) are read to their end, within the limit.
// Errors name the path: "cannot read PATH: <OS reason>", "PATH: a FIFO, not a regular file: …",
// "PATH: 1073741824 bytes, larger than the 1 MiB <limit.format>".
Result<Bytes> read_file(const std::filesystem::path& path, const FileLimit& limit);
Result<std::string> read_text_file(const std::filesystem::path& path, const FileLimit& limit);

// Writes a temporary file, fsync, rename(), fsync of the directory: readers never see a partial
// file nor a crash an empty one. Created with `mode` (less the umask): 0600 for private keys.
Status write_file_atomic(const std::filesystem::path& path, ByteView data, unsigned mode = 0644);

// A cache entry: write_file_atomic() after creating the missing directories above `path`.
Status write_cache_file(const std::filesystem::path& path, ByteView data);
// Whether a cache entry is there. A cache whose directories cannot be searched (permissions) is
// an error naming the path and the reason, not a miss and not an exception.
Result<bool> cache_file_exists(const std::filesystem::path& path);

}  // namespace cloister
