#include "cloister/common/http.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

namespace cloister::http {
namespace {

TEST(HttpTest, ParsesRequestsIncrementally) {
  std::string wire =
      "PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /a";
  EXPECT_TRUE(std::holds_alternative<Incomplete>(parse_request(wire.substr(0, 20))));
  auto result = parse_request(wire);
  ASSERT_TRUE(std::holds_alternative<Parsed>(result));
  const auto& [req, consumed] = std::get<Parsed>(result);
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.path, "/api/v1/vm.pause");
  EXPECT_EQ(req.body, "{}");
  EXPECT_EQ(req.headers.at("host"), "x");
  EXPECT_TRUE(req.keep_alive);
  EXPECT_EQ(consumed, wire.size() - 6);
}

TEST(HttpTest, QueryAndConnectionClose) {
  auto result = parse_request(
      "GET /api/v1/metrics?format=prometheus HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");
  ASSERT_TRUE(std::holds_alternative<Parsed>(result));
  const Request& req = std::get<Parsed>(result).request;
  EXPECT_EQ(req.path, "/api/v1/metrics");
  EXPECT_EQ(req.query, "format=prometheus");
  EXPECT_FALSE(req.keep_alive);
}

int rejected_with(const ParseResult& result) {
  const auto* rejection = std::get_if<Rejection>(&result);
  return rejection ? rejection->status : 0;
}

TEST(HttpTest, RejectsMalformedRequestsWith400) {
  const std::pair<const char*, const char*> cases[] = {
      {"GET /\r\n\r\n", "HTTP request line: expected \"METHOD TARGET HTTP/1.1\""},
      {"GET / HTTP/2\r\n\r\n",
       "HTTP request line: expected HTTP/1.1 or HTTP/1.0, found \"HTTP/2\""},
      {"G(T / HTTP/1.1\r\n\r\n", "HTTP request line: invalid method"},
      {"GET x HTTP/1.1\r\n\r\n",
       "HTTP request line: expected an origin-form target starting with '/'"},
      {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
       "HTTP header: obsolete line folding is not accepted"},
      {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", "HTTP header: expected \"name: value\""},
      {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
       "HTTP header: Transfer-Encoding is not supported; send Content-Length"},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n",
       "HTTP header: more than one content-length field"},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
       "HTTP header: Content-Length \"-1\" is not a decimal number"},
  };
  for (const auto& [bad, reason] : cases) {
    const ParseResult result = parse_request(bad);
    ASSERT_EQ(rejected_with(result), 400) << bad;
    EXPECT_EQ(std::get<Rejection>(result).reason, reason) << bad;
  }
}

// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host; HTTP/1.0 predates it.
TEST(HttpTest, AnHttp11RequestNeedsExactlyOneHost) {
  const ParseResult none = parse_request("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(rejected_with(none), 400);
  EXPECT_EQ(std::get<Rejection>(none).reason,
            "HTTP header: an HTTP/1.1 request without a Host field");
  const ParseResult two = parse_request("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n");
  ASSERT_EQ(rejected_with(two), 400);
  EXPECT_EQ(std::get<Rejection>(two).reason, "HTTP header: more than one HOST field");
  EXPECT_TRUE(std::holds_alternative<Parsed>(parse_request("GET / HTTP/1.0\r\n\r\n")));
}

// Which of two credentials counts must not depend on who reads the request (a proxy may take the
// first, a server the last), so a second Authorization or Cookie line is refused; any other
// repeated field is one comma-separated list (RFC 9110 §5.3).
TEST(HttpTest, ASecondCredentialIsRefusedAndOtherRepeatsAreOneList) {
  for (const char* field : {"Authorization: Bearer b", "Cookie: kbs-session-id=b"}) {
    const std::string name(field, std::string_view(field).find(':'));
    const ParseResult result = parse_request(
        "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nCookie: kbs-session-id=a\r\n" +
        std::string(field) + "\r\n\r\n");
    ASSERT_EQ(rejected_with(result), 400) << field;
    EXPECT_EQ(std::get<Rejection>(result).reason, "HTTP header: more than one " + name + " field");
  }
  const ParseResult listed =
      parse_request("GET / HTTP/1.1\r\nHost: x\r\nAccept: a/b\r\nAccept: c/d\r\n\r\n");
  ASSERT_TRUE(std::holds_alternative<Parsed>(listed));
  EXPECT_EQ(std::get<Parsed>(listed).request.headers.at("accept"), "a/b, c/d");
}

// Connection is a list of options (RFC 9110 §7.6.1): "close" anywhere in it ends the connection
// after the answer, whatever else it says; "keep-alive" keeps an HTTP/1.0 one.
TEST(HttpTest, ConnectionOptionsAreReadAsAList) {
  const auto keep_alive = [](const std::string& wire) {
    const ParseResult result = parse_request(wire);
    EXPECT_TRUE(std::holds_alternative<Parsed>(result)) << wire;
    return std::holds_alternative<Parsed>(result) && std::get<Parsed>(result).request.keep_alive;
  };
  EXPECT_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n"));
  EXPECT_FALSE(keep_alive(
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(keep_alive("GET / HTTP/1.1\r\nHost: x\r\nConnection: TE\r\n\r\n"));
  EXPECT_TRUE(keep_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive, TE\r\n\r\n"));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
}

// A refusal that quotes the client's bytes quotes them as printable ASCII: an owner that puts the
// reason in a JSON body must never meet bytes that are not UTF-8 (nor half a UTF-8 character).
TEST(HttpTest, ClientBytesInAReasonAreQuotedAsPrintableAscii) {
  auto version = parse_request("GET / HTTP/1.\xff\\\x01\r\n\r\n");
  ASSERT_EQ(rejected_with(version), 400);
  EXPECT_EQ(std::get<Rejection>(version).reason,
            "HTTP request line: expected HTTP/1.1 or HTTP/1.0, found \"HTTP/1.\\xff\\x5c\\x01\"");
  auto length = parse_request("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\xc3\xa9\r\n\r\n");
  ASSERT_EQ(rejected_with(length), 400);
  EXPECT_EQ(std::get<Rejection>(length).reason,
            "HTTP header: Content-Length \"1\\xc3\\xa9\" is not a decimal number");
}

TEST(HttpTest, HeaderSectionOverTheLimitIs431EvenBeforeItEnds) {
  const Limits limits{100, 1000};
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a');
  EXPECT_TRUE(std::holds_alternative<Incomplete>(parse_request(head.substr(0, 100), limits)));
  auto unfinished = parse_request(head, limits);
  ASSERT_EQ(rejected_with(unfinished), 431);
  EXPECT_EQ(std::get<Rejection>(unfinished).reason,
            "HTTP header section: at least 119 bytes exceeds the 100-byte limit");
  EXPECT_EQ(rejected_with(parse_request(head + "\r\n\r\n", limits)), 431);
  // Exactly at the limit is accepted.
  const std::string fits =
      "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(100 - 32, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 100u);
  EXPECT_TRUE(std::holds_alternative<Parsed>(parse_request(fits, limits)));
  // The default limit is 8 KiB.
  EXPECT_EQ(rejected_with(parse_request(std::string(8 * 1024 + 1, 'a'))), 431);
}

TEST(HttpTest, DeclaredBodyOverTheLimitIs413BeforeTheBodyArrives) {
  const Limits limits{1000, 10};
  auto over = parse_request("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", limits);
  ASSERT_EQ(rejected_with(over), 413);
  EXPECT_EQ(std::get<Rejection>(over).reason,
            "HTTP body: Content-Length 11 exceeds the 10-byte limit");
  EXPECT_TRUE(std::holds_alternative<Incomplete>(
      parse_request("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", limits)));
  EXPECT_EQ(rejected_with(
                parse_request("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")),
            413);
}

TEST(HttpTest, FormatsResponses) {
  EXPECT_EQ(format_response(Response{204, "application/json", "", ""}, "cloister-vmm", true),
            "HTTP/1.1 204 No Content\r\nServer: cloister-vmm\r\n\r\n");
  EXPECT_EQ(
      format_response(Response{200, "text/plain", "ok", "Allow: GET\r\n"}, "attestd", false),
      "HTTP/1.1 200 OK\r\nServer: attestd\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
      "Connection: close\r\nAllow: GET\r\n\r\nok");
  EXPECT_EQ(status_text(431), "Request Header Fields Too Large");
  EXPECT_EQ(status_text(408), "Request Timeout");
  EXPECT_EQ(status_text(503), "Service Unavailable");
  EXPECT_EQ(status_text(401), "Unauthorized");
  EXPECT_EQ(status_text(429), "Too Many Requests");
}

TEST(HttpStatusTest, EveryErrorCodeHasItsStatus) {
  EXPECT_EQ(status_for(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(status_for(ErrorCode::kPermissionDenied), 403);
  EXPECT_EQ(status_for(ErrorCode::kNotFound), 404);
  EXPECT_EQ(status_for(ErrorCode::kFailedPrecondition), 409);
  EXPECT_EQ(status_for(ErrorCode::kUnimplemented), 501);
  EXPECT_EQ(status_for(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(status_for(ErrorCode::kInternal), 500);
}

}  // namespace
}  // namespace cloister::http
