// A raw HTTP/1.1 client for tests of the project's servers over UNIX sockets: well-behaved
// round trips, and the pieces hostile clients are made of (partial sends, never reading). Every
// wait is bounded by kGuard only so that a broken server fails a test instead of hanging it; no
// test asserts how long anything took.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "cloister/common/fd.h"

namespace cloister::testing {

inline constexpr std::chrono::milliseconds kGuard{20'000};

// A connected UNIX stream socket; invalid (errno set) when the connect fails.
Fd connect_unix(const std::filesystem::path& path);

// Sends all of `bytes`, blocking; false when the connection failed.
bool send_all(const Fd& fd, std::string_view bytes);

struct Reply {
  int status = -1;  // -1: the connection ended (or the guard expired) before a whole response
  std::string headers;
  std::string body;
};

// Reads one response: headers, then Content-Length bytes of body. `pending` carries bytes of
// the next pipelined response between calls.
Reply read_reply(const Fd& fd, std::string& pending);
Reply read_reply(const Fd& fd);

// A request with a Host header, and "Connection: close" when `close`.
std::string get_request(const std::string& target, bool close = false);

// Sends `request` on a new connection and reads the answer, also when the server answered
// before the request was sent whole.
Reply round_trip(const std::filesystem::path& socket, const std::string& request);

// Whether the server still holds the connection: it has neither closed nor half-closed it.
// Never blocks and consumes nothing, so it also works on a client that never reads.
bool server_holds(const Fd& fd);

// Waits (up to kGuard) until the server has closed or half-closed the connection.
bool server_released(const Fd& fd);

}  // namespace cloister::testing
