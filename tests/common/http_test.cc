#include "cloister/common/http.h"

#include <gtest/gtest.h>

#include <string>

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
  auto result =
      parse_request("GET /api/v1/metrics?format=prometheus HTTP/1.1\r\nConnection: close\r\n\r\n");
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
  for (const char* bad :
       {"GET /\r\n\r\n", "GET / HTTP/2\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET x HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"}) {
    EXPECT_EQ(rejected_with(parse_request(bad)), 400) << bad;
  }
}

// A refusal that quotes the client's bytes quotes them as printable ASCII: an owner that puts the
// reason in a JSON body must never meet bytes that are not UTF-8 (nor half a UTF-8 character).
TEST(HttpTest, ClientBytesInAReasonAreQuotedAsPrintableAscii) {
  auto version = parse_request("GET / HTTP/1.\xff\\\x01\r\n\r\n");
  ASSERT_EQ(rejected_with(version), 400);
  EXPECT_EQ(std::get<Rejection>(version).reason,
            "HTTP request line: expected HTTP/1.1 or HTTP/1.0, found \"HTTP/1.\\xff\\x5c\\x01\"");
  auto length = parse_request("GET / HTTP/1.1\r\nContent-Length: 1\xc3\xa9\r\n\r\n");
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
  const std::string fits = "GET / HTTP/1.1\r\nX: " + std::string(100 - 23, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 100u);
  EXPECT_TRUE(std::holds_alternative<Parsed>(parse_request(fits, limits)));
  // The default limit is 8 KiB.
  EXPECT_EQ(rejected_with(parse_request(std::string(8 * 1024 + 1, 'a'))), 431);
}

TEST(HttpTest, DeclaredBodyOverTheLimitIs413BeforeTheBodyArrives) {
  const Limits limits{1000, 10};
  auto over = parse_request("PUT / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits);
  ASSERT_EQ(rejected_with(over), 413);
  EXPECT_EQ(std::get<Rejection>(over).reason,
            "HTTP body: Content-Length 11 exceeds the 10-byte limit");
  EXPECT_TRUE(std::holds_alternative<Incomplete>(
      parse_request("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", limits)));
  EXPECT_EQ(rejected_with(parse_request("PUT / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n")),
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
