#include "support/hostile_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace cloister::testing {

HostileFiles::HostileFiles() {
  static std::atomic<int> counter{0};
  dir_ = std::filesystem::temp_directory_path() /
         ("cloister-hostile-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(directory());
  EXPECT_EQ(::mkfifo(fifo().c_str(), 0600), 0) << std::strerror(errno);
}

HostileFiles::~HostileFiles() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::filesystem::path HostileFiles::sparse(const std::string& name, std::uint64_t size) const {
  const auto path = dir_ / name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0) << std::strerror(errno);
  ::close(fd);
  return path;
}

std::filesystem::path HostileFiles::file(const std::string& name, ByteView data) const {
  const auto path = dir_ / name;
  EXPECT_TRUE(write_file_atomic(path, data).ok());
  return path;
}

std::string refusal(const FileLimit& limit) {
  return "larger than the " + size_in_words(limit.max_bytes) + " " + std::string(limit.format);
}

}  // namespace cloister::testing
