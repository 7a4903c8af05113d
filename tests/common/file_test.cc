#include "cloister/common/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace cloister {
namespace {

constexpr FileLimit kLimit{1u << 20, "a test file can be (tests write a few bytes)"};

// A fresh directory per test, removed afterwards.
class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cloister-file-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A file of `size` bytes that occupies no disk blocks.
  std::filesystem::path sparse(const std::string& name, std::uint64_t size) {
    const auto path = dir_ / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(FileTest, AtomicWriteThenRead) {
  auto path = dir_ / "data.bin";
  const Bytes data = {1, 2, 3, 0, 255};
  ASSERT_TRUE(write_file_atomic(path, data));
  EXPECT_EQ(*read_file(path, kLimit), data);
  EXPECT_EQ(*read_text_file(path, kLimit), std::string("\x01\x02\x03\x00\xff", 5));
}

TEST_F(FileTest, ReadsLargeFilesWhole) {
  auto path = dir_ / "large.bin";
  Bytes data(3 * 65536 + 17);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31 + 7);
  ASSERT_TRUE(write_file_atomic(path, data));
  EXPECT_EQ(*read_file(path, kLimit), data);
}

// Files whose stat size is not their content (procfs reports 0) are read to their end.
TEST_F(FileTest, ReadsFilesWhoseStatSizeIsZero) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) GTEST_SKIP() << "/proc is not mounted: no zero-size file to read";
  const std::string expected{std::istreambuf_iterator<char>(in), {}};
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(std::filesystem::file_size("/proc/self/cmdline"), 0u);
  const auto text = read_text_file("/proc/self/cmdline", kLimit);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, expected);
}

// The same files are bounded while they are read: /proc/self/maps of this process is larger
// than 64 bytes.
TEST_F(FileTest, FilesWhoseStatSizeIsZeroAreBoundedWhileRead) {
  if (!std::filesystem::exists("/proc/self/maps")) GTEST_SKIP() << "/proc is not mounted";
  constexpr FileLimit kTiny{64, "a tiny file can be"};
  const auto text = read_text_file("/proc/self/maps", kTiny);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message(),
            "/proc/self/maps: more than 64 bytes (it grew while being read), larger than the 64 "
            "bytes a tiny file can be");
}

TEST_F(FileTest, CacheFileCreatesItsDirectories) {
  const Bytes data = {0xca, 0xfe};
  ASSERT_TRUE(write_cache_file(dir_ / "vcek" / "v1" / "Genoa" / "x.der", data));
  EXPECT_EQ(*read_file(dir_ / "vcek" / "v1" / "Genoa" / "x.der", kLimit), data);
  // A regular file where a directory must go: the error names the directory.
  ASSERT_TRUE(write_cache_file(dir_ / "x.der", data));
  auto blocked = write_cache_file(dir_ / "x.der" / "y.der", data);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().message().rfind(
                "cannot create cache directory " + (dir_ / "x.der").string(), 0),
            0u)
      << blocked.error().message();
}

TEST_F(FileTest, MissingFileNamesPathAndReason) {
  auto r = read_file("/nonexistent/cloister/file", kLimit);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "cannot read /nonexistent/cloister/file: No such file or directory");
}

TEST_F(FileTest, ExactlyTheLimitIsRead) {
  const auto path = sparse("limit.bin", kLimit.max_bytes);
  const auto bytes = read_file(path, kLimit);
  ASSERT_TRUE(bytes) << bytes.error().message();
  EXPECT_EQ(bytes->size(), kLimit.max_bytes);
}

TEST_F(FileTest, OneByteOverTheLimitIsRefusedNamingTheLimit) {
  const auto path = sparse("over.bin", kLimit.max_bytes + 1);
  const auto bytes = read_file(path, kLimit);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().message(), path.string() +
                                         ": 1048577 bytes, larger than the 1 MiB a test file can "
                                         "be (tests write a few bytes)");
}

// fstat() decides: the gigabyte is never read (the sparse file has no blocks to read anyway, and
// reading it would take a gigabyte of memory).
TEST_F(FileTest, SparseGigabyteIsRefusedBeforeReading) {
  const auto path = sparse("huge.bin", 1ull << 30);
  const auto text = read_text_file(path, kLimit);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message(), path.string() +
                                        ": 1073741824 bytes, larger than the 1 MiB a test file "
                                        "can be (tests write a few bytes)");
}

TEST_F(FileTest, DevZeroIsRefusedAsADevice) {
  const auto bytes = read_file("/dev/zero", kLimit);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().message(),
            "/dev/zero: a character device, not a regular file: give the input as a file (save a "
            "stream to a file first)");
}

TEST_F(FileTest, DirectoryIsRefused) {
  const auto bytes = read_file(dir_, kLimit);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().message(), dir_.string() +
                                         ": a directory, not a regular file: give the input as a "
                                         "file (save a stream to a file first)");
}

// Opening a FIFO without a writer would block forever without O_NONBLOCK; this test would hang.
TEST_F(FileTest, FifoWithoutWriterIsRefusedWithoutBlocking) {
  const auto path = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  const auto bytes = read_file(path, kLimit);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().message(), path.string() +
                                         ": a FIFO, not a regular file: give the input as a file "
                                         "(save a stream to a file first)");
}

TEST_F(FileTest, SocketIsRefused) {
  const auto path = dir_ / "socket";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.string().size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const auto bytes = read_file(path, kLimit);
  ::close(fd);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().message(), path.string() +
                                         ": a socket, not a regular file: give the input as a "
                                         "file (save a stream to a file first)");
}

TEST(FileLimitTest, CheckNamesTheInputAndTheLimit) {
  EXPECT_TRUE(kLimit.check("evidence", kLimit.max_bytes));
  const auto over = kLimit.check("evidence", kLimit.max_bytes + 1);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message(),
            "evidence: 1048577 bytes, larger than the 1 MiB a test file can be (tests write a few "
            "bytes)");
}

TEST(FileLimitTest, SizesInWords) {
  EXPECT_EQ(size_in_words(1), "1 byte");
  EXPECT_EQ(size_in_words(96), "96 bytes");
  EXPECT_EQ(size_in_words(1184), "1184 bytes");
  EXPECT_EQ(size_in_words(16u << 10), "16 KiB");
  EXPECT_EQ(size_in_words(1u << 20), "1 MiB");
  EXPECT_EQ(size_in_words(3ull << 30), "3 GiB");
  EXPECT_EQ(size_in_words((1u << 20) + 1), "1048577 bytes");
}

}  // namespace
}  // namespace cloister
