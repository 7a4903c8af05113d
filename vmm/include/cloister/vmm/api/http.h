// A strict HTTP/1.1 request parser and response writer for the control API (RFC 9112). The
// parser takes untrusted bytes from the API socket: it bounds the header section and body,
// requires Content-Length for bodies, and rejects chunked transfer coding, obsolete line
// folding, malformed request lines and duplicate Content-Length headers.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister::vmm::http {

inline constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;

struct Request {
  std::string method;
  std::string path;   // target without the query
  std::string query;  // after '?', undecoded
  std::string version;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;
};

struct Parsed {
  Request request;
  std::size_t consumed;  // bytes of the buffer this request used
};

// A complete request at the start of `buffer`, nullopt if more bytes are needed, or an error
// (the connection should get 400 and be closed).
Result<std::optional<Parsed>> parse_request(std::string_view buffer);

std::string_view status_text(int status);

// A complete HTTP/1.1 response with Content-Length (and "Connection: close" when !keep_alive).
std::string format_response(int status, std::string_view content_type, std::string_view body,
                            bool keep_alive, std::string_view extra_headers = {});

}  // namespace cloister::vmm::http
