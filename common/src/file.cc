#include "cloister/common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cloister {
namespace {

Error os_error(const std::string& what, const std::filesystem::path& path, int err) {
  return Error("cannot " + what + " " + path.string() + ": " + std::strerror(err));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

template <typename Buffer>
Result<Buffer> read_all(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return os_error("read", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return os_error("stat", path, errno);
  if (S_ISDIR(st.st_mode)) return os_error("read", path, EISDIR);
  // A regular file is read straight into a buffer of its size: one copy, no re-allocation.
  // Anything else (a pipe, a device, a file that grows meanwhile) continues in chunks.
  Buffer out;
  std::size_t size = 0;
  if (S_ISREG(st.st_mode)) out.resize(static_cast<std::size_t>(st.st_size));
  char chunk[65536];
  for (;;) {
    const bool into_out = size < out.size();
    ssize_t n = into_out ? ::read(fd.get(), out.data() + size, out.size() - size)
                         : ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("read", path, errno);
    }
    if (n == 0) break;
    if (!into_out) out.insert(out.end(), chunk, chunk + n);
    size += static_cast<std::size_t>(n);
  }
  out.resize(size);
  return out;
}

}  // namespace

Result<Bytes> read_file(const std::filesystem::path& path) {
  return read_all<Bytes>(path);
}

Result<std::string> read_text_file(const std::filesystem::path& path) {
  return read_all<std::string>(path);
}

Status write_file_atomic(const std::filesystem::path& path, ByteView data, unsigned mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
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
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return os_error("rename into place", path, err);
  }
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

}  // namespace cloister
