#include "support/api_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace cloister::testing {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Fd connect_unix(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Fd();
  return fd;
}

bool send_all(const Fd& fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Reply read_reply(const Fd& fd, std::string& pending) {
  Reply reply;
  const auto guard = Clock::now() + kGuard;
  for (;;) {
    const std::size_t end = pending.find("\r\n\r\n");
    if (end != std::string::npos && pending.size() >= 12) {
      const std::string headers = pending.substr(0, end + 2);
      const std::size_t cl = headers.find("Content-Length: ");
      const std::size_t length = cl == std::string::npos ? 0 : std::stoul(headers.substr(cl + 16));
      if (pending.size() >= end + 4 + length) {
        reply.status = std::stoi(pending.substr(9, 3));
        reply.headers = headers;
        reply.body = pending.substr(end + 4, length);
        pending.erase(0, end + 4 + length);
        return reply;
      }
    }
    const auto left = std::chrono::duration_cast<milliseconds>(guard - Clock::now()).count();
    pollfd p{fd.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return reply;
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return reply;
    pending.append(buf, static_cast<std::size_t>(n));
  }
}

Reply read_reply(const Fd& fd) {
  std::string pending;
  return read_reply(fd, pending);
}

std::string get_request(const std::string& target, bool close) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + (close ? "Connection: close\r\n" : "") +
         "\r\n";
}

Reply round_trip(const std::filesystem::path& socket, const std::string& request) {
  Fd fd = connect_unix(socket);
  if (!fd.valid()) return {};
  // A server may answer (503) and close before it reads the request, which then fails to send;
  // the answer is still there to read.
  send_all(fd, request);
  return read_reply(fd);
}

bool server_holds(const Fd& fd) {
  pollfd p{fd.get(), POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0 || !(p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

bool server_released(const Fd& fd) {
  const auto guard = Clock::now() + kGuard;
  while (Clock::now() < guard) {
    pollfd p{fd.get(), POLLRDHUP, 0};
    if (::poll(&p, 1, 50) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR))) return true;
  }
  return false;
}

}  // namespace cloister::testing
