#include "support/fake_qgs.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace cloister::testing {
namespace {

void put32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

Bytes qgs_response(ByteView quote, std::uint32_t error, std::uint32_t type, ByteView id) {
  Bytes r{1, 0, 1, 0};
  put32(r, type);
  put32(r, static_cast<std::uint32_t>(24 + id.size() + quote.size()));
  put32(r, error);
  put32(r, static_cast<std::uint32_t>(id.size()));
  put32(r, static_cast<std::uint32_t>(quote.size()));
  r.insert(r.end(), id.begin(), id.end());
  r.insert(r.end(), quote.begin(), quote.end());
  return r;
}

Bytes qgs_framed(ByteView body) {
  const auto n = static_cast<std::uint32_t>(body.size());
  Bytes out{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
            static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

FakeQgs::FakeQgs(std::function<Bytes(const Bytes&)> answer)
    : path_(::testing::TempDir() + "/cloister-qgs-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter_++)) {
  ::unlink(path_.c_str());
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(listener_, 4), 0);
  thread_ = std::thread([this, answer = std::move(answer)] {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    std::uint8_t prefix[4];
    if (::recv(fd, prefix, 4, MSG_WAITALL) == 4) {
      const std::uint32_t size = prefix[0] << 24 | prefix[1] << 16 | prefix[2] << 8 | prefix[3];
      request_.resize(size);
      ::recv(fd, request_.data(), size, MSG_WAITALL);
      const Bytes reply = answer(request_);
      ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  });
}

FakeQgs::~FakeQgs() {
  ::shutdown(listener_, SHUT_RDWR);
  thread_.join();
  ::close(listener_);
  ::unlink(path_.c_str());
}

}  // namespace cloister::testing
