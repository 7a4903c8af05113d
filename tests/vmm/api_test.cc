#include "cloister/vmm/api/api.h"

#include <gtest/gtest.h>

namespace cloister::vmm {
namespace {

using nlohmann::json;

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
