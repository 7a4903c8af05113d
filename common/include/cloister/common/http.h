// HTTP/1.1 messages for the project's servers (RFC 9112): a strict request parser and a response
// writer. The parser takes untrusted bytes from a socket: it bounds the header section and the
// body, requires Content-Length for bodies, and refuses chunked transfer coding, obsolete line
// folding, malformed request lines, an HTTP/1.1 request without Host, and a second Host,
// Content-Length, Authorization or Cookie line (other repeated fields are joined with ", ", one
// list). Each refusal carries the status a server answers it with, so a server maps it without
// reading the words.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "cloister/common/result.h"

namespace cloister::http {

// How large a request may be. A header section (request line, fields and the blank line) over
// max_header_bytes is refused with 431, a declared body over max_body_bytes with 413.
struct Limits {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
};

struct Request {
  std::string method;
  std::string path;   // target without the query
  std::string query;  // after '?', undecoded
  std::string version;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;
  // The client's address as the server accepted it ("127.0.0.1", "::1"); empty on UNIX sockets
  // and for requests not received by a Server.
  std::string peer;
};

// A complete request at the start of the buffer.
struct Parsed {
  Request request;
  std::size_t consumed;  // bytes of the buffer this request used
};

// The buffer holds the start of a request (or nothing); more bytes are needed. Once the header
// section is complete, `needed` is the whole request's size (header section and body), so a
// caller can wait for that many bytes before parsing again; 0 while the header section is not.
struct Incomplete {
  std::size_t needed = 0;
};

// The request is refused: the server answers `status` (400, 413 or 431) with `reason` and closes
// the connection, since what follows in the stream cannot be framed.
struct Rejection {
  int status;
  std::string reason;
};

using ParseResult = std::variant<Incomplete, Parsed, Rejection>;

// Parses the request at the start of `buffer`. Never reads past `buffer`; a buffer longer than
// one request leaves the rest (pipelined requests) for the next call.
ParseResult parse_request(std::string_view buffer, const Limits& limits = {});

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string extra_headers;  // complete lines, each ending in CRLF ("Allow: PUT\r\n")
};

// The HTTP status an error's code maps to (result.h names the pairs): invalid argument 400,
// permission denied 403, not found 404, failed precondition 409, unimplemented 501,
// unavailable 503, internal 500.
int status_for(ErrorCode code);

// The reason phrase for the statuses the project's servers send; "Unknown" for others.
std::string_view status_text(int status);

// The response on the wire: status line, "Server: <server>", Content-Type (with a body),
// Content-Length (not on 204), "Connection: close" unless keep_alive, extra headers, the body.
std::string format_response(const Response& response, std::string_view server, bool keep_alive);

}  // namespace cloister::http
