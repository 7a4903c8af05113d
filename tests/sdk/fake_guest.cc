#include "fake_guest.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

namespace cloister::testing {
namespace {

void put32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

bool read_exact(int fd, std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

Bytes evidence_frame(std::uint32_t kind, std::uint32_t length, const Bytes& bytes) {
  Bytes out;
  put32(out, kind);
  put32(out, length);
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

Bytes evidence_stream(const std::vector<std::pair<std::uint32_t, Bytes>>& frames) {
  Bytes out;
  put32(out, 0x56454c43);  // "CLEV"
  put32(out, 1);
  for (const auto& [kind, bytes] : frames) {
    const Bytes f = evidence_frame(kind, static_cast<std::uint32_t>(bytes.size()), bytes);
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

FakeGuest::FakeGuest(Behavior behavior) : behavior_(std::move(behavior)) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("cloister-fake-guest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove(path_);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0) {
    throw std::runtime_error("fake guest: cannot listen on " + path_.string());
  }
  thread_ = std::thread([this, listener] { serve(listener); });
}

FakeGuest::~FakeGuest() {
  if (thread_.joinable()) thread_.join();
  std::filesystem::remove(path_);
}

std::string FakeGuest::connect_line() {
  if (thread_.joinable()) thread_.join();
  return connect_line_;
}

std::array<std::uint8_t, 64> FakeGuest::report_data() {
  if (thread_.joinable()) thread_.join();
  return report_data_;
}

void FakeGuest::serve(int listener) {
  pollfd p{listener, POLLIN, 0};
  const int conn = ::poll(&p, 1, 10000) == 1 ? ::accept(listener, nullptr, nullptr) : -1;
  ::close(listener);
  if (conn < 0) return;
  char c = 0;
  while (c != '\n' && connect_line_.size() < 64 && ::read(conn, &c, 1) == 1) connect_line_ += c;
  if (!behavior_.answer.empty() &&
      ::write(conn, behavior_.answer.data(), behavior_.answer.size()) ==
          static_cast<ssize_t>(behavior_.answer.size()) &&
      behavior_.answer.rfind("OK ", 0) == 0 && read_exact(conn, report_data_.data(), 64)) {
    const Bytes stream = behavior_.stream(report_data_);
    for (std::size_t at = 0; at < stream.size(); at += 7) {
      const std::size_t n = std::min<std::size_t>(7, stream.size() - at);
      if (::send(conn, stream.data() + at, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) break;
    }
    if (behavior_.hold_open) {
      std::uint8_t sink;
      while (::read(conn, &sink, 1) > 0) {
      }
    }
  }
  ::close(conn);
}

}  // namespace cloister::testing
