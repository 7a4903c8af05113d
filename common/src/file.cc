#include "cloister/common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "cloister/common/fd.h"

namespace cloister {
namespace {

Error os_error(const std::string& what, const std::filesystem::path& path, int err) {
  return Error("cannot " + what + " " + path.string() + ": " + std::strerror(err));
}

std::string_view file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "an unknown kind of file";
}

Error too_large(std::string_view name, const std::string& found, const FileLimit& limit) {
  return Error(std::string(name) + ": " + found + ", larger than the " +
               size_in_words(limit.max_bytes) + " " + std::string(limit.format));
}

Error not_regular(const std::filesystem::path& path, mode_t mode) {
  return Error(path.string() + ": " + std::string(file_kind(mode)) +
               ", not a regular file: give the input as a file (save a stream to a file first)");
}

template <typename Buffer>
Result<Buffer> read_bounded(const std::filesystem::path& path, const FileLimit& limit) {
  // O_NONBLOCK: opening a FIFO without a writer would block in open(2) until one comes.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0) {
    const int err = errno;
    // A socket cannot be opened at all (ENXIO): say what it is rather than the errno.
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      return not_regular(path, st.st_mode);
    return os_error("read", path, err);
  }
  if (::fstat(fd.get(), &st) != 0) return os_error("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
  const auto stat_size = static_cast<std::uint64_t>(st.st_size);
  if (stat_size > limit.max_bytes)
    return too_large(path.string(), std::to_string(stat_size) + " bytes", limit);
  // Read straight into a buffer of the size fstat() saw; past it (a file that grows, procfs
  // reporting 0) in chunks, up to one byte beyond the limit.
  constexpr std::uint64_t kChunk = 65536;
  Buffer out;
  out.resize(static_cast<std::size_t>(stat_size));
  std::size_t size = 0;
  for (;;) {
    if (size == out.size()) {
      if (size > limit.max_bytes) {
        return too_large(
            path.string(),
            "more than " + std::to_string(limit.max_bytes) + " bytes (it grew while being read)",
            limit);
      }
      out.resize(size + static_cast<std::size_t>(std::min(kChunk, limit.max_bytes + 1 - size)));
    }
    const ssize_t n = ::read(fd.get(), out.data() + size, out.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("read", path, errno);
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  out.resize(size);
  return out;
}

}  // namespace

std::string size_in_words(std::uint64_t bytes) {
  constexpr std::pair<unsigned, const char*> kUnits[] = {{30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
  for (const auto& [shift, unit] : kUnits) {
    const std::uint64_t one = std::uint64_t{1} << shift;
    if (bytes >= one && bytes % one == 0) return std::to_string(bytes >> shift) + " " + unit;
  }
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

Status FileLimit::check(std::string_view name, std::uint64_t size) const {
  if (size <= max_bytes) return {};
  return too_large(name, std::to_string(size) + " bytes", *this);
}

Result<Bytes> read_file(const std::filesystem::path& path, const FileLimit& limit) {
  return read_bounded<Bytes>(path, limit);
}

Result<std::string> read_text_file(const std::filesystem::path& path, const FileLimit& limit) {
  return read_bounded<std::string>(path, limit);
}

Status write_file_atomic(const std::filesystem::path& path, ByteView data, unsigned mode) {
  // Unique per process and call, so threads writing the same path never share a temporary.
  static std::atomic<unsigned long> counter{0};
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.get() < 0) return os_error("create", tmp, errno);
    std::size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::unlink(tmp.c_str());
        return os_error("write", tmp, err);
      }
      done += static_cast<std::size_t>(n);
    }
    // On disk before the rename, so a crash leaves the old file or the whole new one, never an
    // empty one; close(2) reports what a network filesystem deferred.
    if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return os_error("write", tmp, err);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return os_error("rename into place", path, err);
  }
  // The rename itself is durable once the directory is.
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid() || ::fsync(dir_fd.get()) != 0)
    return os_error("sync the directory of", path, errno);
  return {};
}

Status write_cache_file(const std::filesystem::path& path, ByteView data) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec)
    return Error("cannot create cache directory " + path.parent_path().string() + ": " +
                 ec.message());
  return write_file_atomic(path, data);
}

Result<bool> cache_file_exists(const std::filesystem::path& path) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec) return Error("cannot look up cache entry " + path.string() + ": " + ec.message());
  return exists;
}

}  // namespace cloister
