#include "cloister/vmm/api/api.h"

#include <gtest/gtest.h>

#include "cloister/vmm/api/http.h"

namespace cloister::vmm {
namespace {

using nlohmann::json;

TEST(HttpTest, ParsesRequestsIncrementally) {
  std::string wire =
      "PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /a";
  EXPECT_FALSE(http::parse_request(wire.substr(0, 20)).value().has_value());
  auto p = http::parse_request(wire);
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->request.method, "PUT");
  EXPECT_EQ((*p)->request.path, "/api/v1/vm.pause");
  EXPECT_EQ((*p)->request.body, "{}");
  EXPECT_EQ((*p)->request.headers.at("host"), "x");
  EXPECT_TRUE((*p)->request.keep_alive);
  EXPECT_EQ((*p)->consumed, wire.size() - 6);
}

TEST(HttpTest, QueryAndConnectionClose) {
  auto p = http::parse_request(
      "GET /api/v1/metrics?format=prometheus HTTP/1.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->request.path, "/api/v1/metrics");
  EXPECT_EQ((*p)->request.query, "format=prometheus");
  EXPECT_FALSE((*p)->request.keep_alive);
}

TEST(HttpTest, RejectsMalformedRequests) {
  for (const char* bad :
       {"GET /\r\n\r\n", "GET / HTTP/2\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET x HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"}) {
    EXPECT_FALSE(http::parse_request(bad).ok()) << bad;
  }
  EXPECT_FALSE(http::parse_request(std::string(9000, 'a')).ok());
}

TEST(HttpTest, FormatsResponses) {
  EXPECT_EQ(http::format_response(204, "application/json", "", true),
            "HTTP/1.1 204 No Content\r\nServer: cloister-vmm\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(
      http::format_response(200, "text/plain", "ok", false),
      "HTTP/1.1 200 OK\r\nServer: cloister-vmm\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
      "Connection: close\r\n\r\nok");
}

class FakeController : public ApiController {
 public:
  json info() override {
    return {{"state", paused ? "paused" : "running"},
            {"tee", "none"},
            {"measurement", nullptr},
            {"measurement_note", "tee=none"}};
  }
  Status pause() override {
    if (paused) return Error("pause: the VM is paused");
    paused = true;
    return {};
  }
  Status resume() override {
    if (!paused) return Error("resume: the VM is running");
    paused = false;
    return {};
  }
  void shutdown() override { shut_down = true; }
  Metrics& metrics() override { return m; }
  bool paused = false, shut_down = false;
  Metrics m;
};

http::Request req(std::string method, std::string path, std::string query = "") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

TEST(ApiRouteTest, LifecycleEndpoints) {
  FakeController c;
  EXPECT_EQ(route(req("PUT", "/api/v1/vm.pause"), c).status, 204);
  EXPECT_TRUE(c.paused);
  auto again = route(req("PUT", "/api/v1/vm.pause"), c);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(json::parse(again.body)["error"], "pause: the VM is paused");
  EXPECT_EQ(json::parse(route(req("GET", "/api/v1/vm.info"), c).body)["state"], "paused");
  EXPECT_EQ(route(req("PUT", "/api/v1/vm.resume"), c).status, 204);
  EXPECT_EQ(route(req("PUT", "/api/v1/vm.shutdown"), c).status, 204);
  EXPECT_TRUE(c.shut_down);
  EXPECT_EQ(c.m.api_requests.load(), 5u);
  EXPECT_EQ(c.m.api_errors.load(), 1u);
}

TEST(ApiRouteTest, MeasurementIsNullForTeeNoneWithANote) {
  FakeController c;
  auto r = route(req("GET", "/api/v1/vm.measurement"), c);
  ASSERT_EQ(r.status, 200);
  auto body = json::parse(r.body);
  EXPECT_TRUE(body["measurement"].is_null());
  EXPECT_EQ(body["tee"], "none");
  EXPECT_EQ(body["note"], "tee=none");
}

TEST(ApiRouteTest, MetricsInJsonAndPrometheus) {
  FakeController c;
  c.m.exits_io = 42;
  auto j = route(req("GET", "/api/v1/metrics"), c);
  EXPECT_EQ(json::parse(j.body)["exits_io"], 42);
  auto p = route(req("GET", "/api/v1/metrics", "format=prometheus"), c);
  EXPECT_EQ(p.content_type, "text/plain; version=0.0.4");
  EXPECT_NE(p.body.find("cloister_vmm_exits_io_total 42\n"), std::string::npos);
  EXPECT_EQ(route(req("GET", "/api/v1/metrics", "format=xml"), c).status, 400);
}

TEST(ApiRouteTest, UnknownPathsAndMethods) {
  FakeController c;
  EXPECT_EQ(route(req("GET", "/api/v1/vm.explode"), c).status, 404);
  auto r = route(req("GET", "/api/v1/vm.pause"), c);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.extra_headers, "Allow: PUT\r\n");
  EXPECT_FALSE(c.paused);
  EXPECT_EQ(json::parse(route(req("GET", "/api/v1/vmm.ping"), c).body)["version"], "0.1.0");
}

}  // namespace
}  // namespace cloister::vmm
