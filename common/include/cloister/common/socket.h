// Listening sockets for the project's servers (http_server.h serves any of them).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "cloister/common/fd.h"
#include "cloister/common/result.h"

namespace cloister {

// Connections the kernel queues before the server accepts them. The server accepts in a loop, so
// the queue only absorbs bursts; Linux caps it at net.core.somaxconn.
inline constexpr int kListenBacklog = 128;

// A UNIX stream socket bound at `path` and listening with `backlog`, close-on-exec. A stale
// socket file at `path` (nothing accepts on it) is replaced; a live socket, any other kind of
// file, or a path longer than sockaddr_un holds is an error naming the path.
Result<Fd> listen_unix(const std::string& path, int backlog = kListenBacklog);

// An IPv4 or IPv6 socket address for `host`:`port`, what listen_tcp() binds and a client
// connects to. `host` is an IPv4 literal, an IPv6 literal without brackets, or "localhost"
// (127.0.0.1); names are not resolved. Anything else is kInvalidArgument naming the host.
struct TcpAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};
Result<TcpAddress> tcp_address(const std::string& host, std::uint16_t port);

// A TCP socket bound at `host`:`port` and listening with `backlog`, close-on-exec, with
// SO_REUSEADDR (a restarted server binds while old connections are in TIME_WAIT). `host` is an
// IPv4 literal ("127.0.0.1", "0.0.0.0"), an IPv6 literal without brackets ("::1", "::"; an IPv6
// socket with IPV6_V6ONLY, so "::" does not also take IPv4) or "localhost" (127.0.0.1); names
// are not resolved, so binding never waits on DNS. Port 0 binds a port the kernel picks
// (local_port() tells which). Errors name "host:port": an address that is no literal is
// kInvalidArgument, a port in use kInternal with the OS reason (EADDRINUSE).
Result<Fd> listen_tcp(const std::string& host, std::uint16_t port, int backlog = kListenBacklog);

// Splits "HOST:PORT" for listen_tcp(): "127.0.0.1:8443", "[::1]:8443", "localhost:0". An IPv6
// host is written in brackets; the port is decimal, 0 to 65535. Errors (kInvalidArgument) quote
// the input and say what is wrong: no port, an empty host, an unclosed bracket, an unbracketed
// IPv6 address, a port that is not a number or out of range.
Result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view address);

// The port a bound IPv4 or IPv6 socket has, e.g. after listen_tcp(host, 0).
Result<std::uint16_t> local_port(int fd);

}  // namespace cloister
