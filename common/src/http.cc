#include "cloister/common/http.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "cloister/common/hex.h"

namespace cloister::http {
namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Fields read as one value. A second line of one of them is refused: Host (RFC 9112 §3.2) and
// Content-Length (§6.3) by the RFC, Authorization and Cookie because which of two credentials
// counts would depend on the reader. Any other repeated field is one list (RFC 9110 §5.3).
bool is_singleton(std::string_view lowered_name) {
  for (std::string_view name : {"host", "content-length", "authorization", "cookie"})
    if (lowered_name == name) return true;
  return false;
}

// Whether the comma-separated list `lowered` holds `token` (Connection options, RFC 9110 §7.6.1).
bool has_token(std::string_view lowered, std::string_view token) {
  while (!lowered.empty()) {
    const std::size_t comma = lowered.find(',');
    if (trim(lowered.substr(0, comma)) == token) return true;
    lowered = comma == std::string_view::npos ? std::string_view() : lowered.substr(comma + 1);
  }
  return false;
}

Rejection bad_request(std::string reason) {
  return Rejection{400, std::move(reason)};
}

Rejection header_section_too_large(std::size_t found, bool complete, const Limits& limits) {
  return Rejection{431, "HTTP header section: " + std::string(complete ? "" : "at least ") +
                            std::to_string(found) + " bytes exceeds the " +
                            std::to_string(limits.max_header_bytes) + "-byte limit"};
}

}  // namespace

ParseResult parse_request(std::string_view buffer, const Limits& limits) {
  const std::size_t header_end = buffer.find("\r\n\r\n");
  const std::size_t header_bytes =
      header_end == std::string_view::npos ? buffer.size() : header_end + 4;
  if (header_bytes > limits.max_header_bytes)
    return header_section_too_large(header_bytes, header_end != std::string_view::npos, limits);
  if (header_end == std::string_view::npos) return Incomplete{};
  std::string_view head = buffer.substr(0, header_end);
  Request req;

  const std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos)
    return bad_request("HTTP request line: expected \"METHOD TARGET HTTP/1.1\"");
  req.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = std::string(line.substr(sp2 + 1));
  if (req.method.empty() || !std::all_of(req.method.begin(), req.method.end(), is_tchar))
    return bad_request("HTTP request line: invalid method");
  if (target.empty() || target.front() != '/')
    return bad_request("HTTP request line: expected an origin-form target starting with '/'");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return bad_request("HTTP request line: control or non-ASCII byte in the target");
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0")
    return bad_request("HTTP request line: expected HTTP/1.1 or HTTP/1.0, found \"" +
                       printable(req.version, 16) + "\"");
  const std::size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  req.keep_alive = req.version == "HTTP/1.1";

  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (field.empty()) return bad_request("HTTP header: empty line inside the header section");
    if (field.front() == ' ' || field.front() == '\t')
      return bad_request("HTTP header: obsolete line folding is not accepted");
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return bad_request("HTTP header: expected \"name: value\"");
    std::string_view name = field.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar))
      return bad_request("HTTP header: invalid character in a field name");
    std::string_view value = trim(field.substr(colon + 1));
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        return bad_request("HTTP header: control character in a field value");
    std::string key = lower(name);
    const auto [it, inserted] = req.headers.try_emplace(key, value);
    if (inserted) continue;
    if (is_singleton(key))
      return bad_request("HTTP header: more than one " + std::string(name) + " field");
    it->second.append(", ").append(value);
  }
  if (req.version == "HTTP/1.1" && !req.headers.count("host"))
    return bad_request("HTTP header: an HTTP/1.1 request without a Host field");
  if (req.headers.count("transfer-encoding"))
    return bad_request("HTTP header: Transfer-Encoding is not supported; send Content-Length");
  if (auto it = req.headers.find("connection"); it != req.headers.end()) {
    const std::string options = lower(it->second);
    if (has_token(options, "keep-alive")) req.keep_alive = true;
    if (has_token(options, "close")) req.keep_alive = false;
  }

  std::size_t body_len = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
    const std::string& v = it->second;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), body_len);
    if (ec != std::errc() || ptr != v.data() + v.size() || v.empty())
      return bad_request("HTTP header: Content-Length \"" + printable(v, 20) +
                         "\" is not a decimal number");
    if (body_len > limits.max_body_bytes)
      return Rejection{413, "HTTP body: Content-Length " + v + " exceeds the " +
                                std::to_string(limits.max_body_bytes) + "-byte limit"};
  }
  const std::size_t total = header_end + 4 + body_len;
  if (buffer.size() < total) return Incomplete{total};
  req.body = std::string(buffer.substr(header_end + 4, body_len));
  return Parsed{std::move(req), total};
}

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kUnimplemented:
      return 501;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      break;
  }
  return 500;
}

std::string_view status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string format_response(const Response& response, std::string_view server, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    std::string(status_text(response.status)) + "\r\n";
  out += "Server: " + std::string(server) + "\r\n";
  if (!response.body.empty()) out += "Content-Type: " + response.content_type + "\r\n";
  // A 204 carries no Content-Length (RFC 9110 section 8.6).
  if (response.status != 204)
    out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (!keep_alive) out += "Connection: close\r\n";
  out += response.extra_headers;
  out += "\r\n";
  out += response.body;
  return out;
}

}  // namespace cloister::http
