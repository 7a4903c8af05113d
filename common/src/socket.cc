#include "cloister/common/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cloister {

Result<Fd> listen_unix(const std::string& path, int backlog) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Error("socket " + path + ": path is " + std::to_string(path.size()) +
                 " bytes; expected 1 to " + std::to_string(sizeof addr.sun_path - 1));
  std::memcpy(addr.sun_path, path.data(), path.size());
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return os_error("socket " + path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error("socket " + path + ": exists and is not a socket");
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return Error("socket " + path + ": another process is serving it");
    ::unlink(path.c_str());
  }
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return os_error("bind socket " + path);
  if (::listen(listener.get(), backlog) < 0) return os_error("listen on socket " + path);
  return listener;
}

namespace {

std::string host_port(const std::string& host, std::uint16_t port) {
  return (host.find(':') == std::string::npos ? host : "[" + host + "]") + ":" +
         std::to_string(port);
}

}  // namespace

Result<TcpAddress> tcp_address(const std::string& host, std::uint16_t port) {
  TcpAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  const std::string literal = host == "localhost" ? "127.0.0.1" : host;
  if (::inet_pton(AF_INET, literal.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, literal.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof *v6;
  } else {
    return Error("host \"" + host + "\" is not an IPv4 or IPv6 address literal or \"localhost\"");
  }
  return out;
}

Result<Fd> listen_tcp(const std::string& host, std::uint16_t port, int backlog) {
  const std::string where = "TCP listener " + host_port(host, port);
  auto address = tcp_address(host, port);
  if (!address) return address.error().with_context(where);
  const sockaddr_storage& addr = address->storage;
  const socklen_t addr_len = address->length;
  Fd listener(::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return os_error(where + ": socket");
  const int one = 1;
  if (::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return os_error(where + ": SO_REUSEADDR");
  if (addr.ss_family == AF_INET6 &&
      ::setsockopt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
    return os_error(where + ": IPV6_V6ONLY");
  if (::bind(listener.get(), address->get(), addr_len) < 0) {
    const int err = errno;
    // A port in use is a conflict on this host, not the caller's input.
    return err == EADDRINUSE
               ? Error(ErrorCode::kInternal, os_error(where + ": bind", err).message())
               : os_error(where + ": bind", err);
  }
  if (::listen(listener.get(), backlog) < 0) return os_error(where + ": listen");
  return listener;
}

Result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view address) {
  const std::string quoted = "address \"" + std::string(address) + "\"";
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const std::size_t close = address.find(']');
    if (close == std::string_view::npos)
      return Error(quoted + ": '[' without ']'; expected [IPV6]:PORT");
    host = address.substr(1, close - 1);
    if (close + 1 >= address.size() || address[close + 1] != ':')
      return Error(quoted + ": no port after ']'; expected [IPV6]:PORT");
    port = address.substr(close + 2);
  } else {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return Error(quoted + ": no port; expected HOST:PORT");
    host = address.substr(0, colon);
    if (host.find(':') != std::string_view::npos)
      return Error(quoted + ": an IPv6 address needs brackets; expected [IPV6]:PORT");
    port = address.substr(colon + 1);
  }
  if (host.empty()) return Error(quoted + ": empty host; expected HOST:PORT");
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos)
    return Error(quoted + ": port \"" + std::string(port) + "\" is not a number from 0 to 65535");
  const unsigned long value = port.size() > 5 ? 65536 : std::stoul(std::string(port));
  if (value > 65535)
    return Error(quoted + ": port " + std::string(port) + " is out of range; expected 0 to 65535");
  return std::pair{std::string(host), static_cast<std::uint16_t>(value)};
}

Result<std::uint16_t> local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return os_error("getsockname");
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return Error("local port: socket family " + std::to_string(addr.ss_family) +
               "; expected AF_INET or AF_INET6");
}

}  // namespace cloister
