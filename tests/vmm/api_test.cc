#include "cloister/vmm/api/api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cloister/vmm/seccomp/seccomp.h"
#include "cloister/vmm/vmm.h"
#include "support/api_client.h"

namespace cloister::vmm {
namespace {

using nlohmann::json;
using namespace cloister::testing;

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
  json nets() override { return json::array({{{"tap", "tap0"}}}); }
  bool set_net_rate_limiters(const std::string& tap, const std::optional<RateLimiterConfig>& new_rx,
                             const std::optional<RateLimiterConfig>& new_tx) override {
    if (tap != "tap0") return false;
    rx = new_rx;
    tx = new_tx;
    return true;
  }
  Status snapshot(const std::string& dir) override {
    snapshot_dirs.push_back(dir);
    if (confidential) return Vmm::confidential_refusal("vm.snapshot", TeeKind::kSimSnp);
    return {};
  }
  Status migrate(const std::string& destination) override {
    migrate_destinations.push_back(destination);
    if (confidential) return Vmm::confidential_refusal("vm.migrate", TeeKind::kSimTdx);
    return Error(ErrorCode::kUnavailable, "vm.migrate: migration destination " + destination +
                                              ": connect: No such file or directory");
  }
  std::optional<RateLimiterConfig> rx, tx;
  bool paused = false, shut_down = false, confidential = false;
  std::vector<std::string> snapshot_dirs, migrate_destinations;
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

http::Request put(std::string path, std::string body) {
  http::Request r = req("PUT", std::move(path));
  r.body = std::move(body);
  return r;
}

TEST(ApiRouteTest, SnapshotTakesAnAbsoluteDirAndNothingElse) {
  FakeController c;
  EXPECT_EQ(route(put("/api/v1/vm.snapshot", R"({"dir": "/tmp/snap"})"), c).status, 204);
  EXPECT_EQ(c.snapshot_dirs, std::vector<std::string>{"/tmp/snap"});
  for (const char* body : {"", "[]", R"({"dir": 3})", R"({"dir": "/a", "x": 1})"}) {
    auto r = route(put("/api/v1/vm.snapshot", body), c);
    EXPECT_EQ(r.status, 400) << body;
  }
  auto relative = route(put("/api/v1/vm.snapshot", R"({"dir": "snap"})"), c);
  EXPECT_EQ(relative.status, 400);
  EXPECT_EQ(json::parse(relative.body)["error"],
            "vm.snapshot: dir: expected an absolute path, found \"snap\"");
  EXPECT_EQ(c.snapshot_dirs.size(), 1u);
}

TEST(ApiRouteTest, MigrateTakesADestinationAndAnswersTheControllersReason) {
  FakeController c;
  for (const char* body :
       {"", "{}", R"({"destination": 3})", R"({"destination": "unix:/a", "x": 1})"}) {
    auto r = route(put("/api/v1/vm.migrate", body), c);
    EXPECT_EQ(r.status, 400) << body;
  }
  EXPECT_TRUE(c.migrate_destinations.empty());
  auto gone = route(put("/api/v1/vm.migrate", R"({"destination": "unix:/gone.sock"})"), c);
  EXPECT_EQ(gone.status, 503);
  EXPECT_EQ(json::parse(gone.body)["code"], "unavailable");
  EXPECT_NE(gone.body.find("unix:/gone.sock: connect"), std::string::npos) << gone.body;
  EXPECT_EQ(c.migrate_destinations, std::vector<std::string>{"unix:/gone.sock"});
}

TEST(ApiRouteTest, ConfidentialSnapshotAndMigrateAre409WithTheReason) {
  FakeController c;
  c.confidential = true;
  auto snap = route(put("/api/v1/vm.snapshot", R"({"dir": "/tmp/x"})"), c);
  EXPECT_EQ(snap.status, 409);
  EXPECT_EQ(json::parse(snap.body)["code"], "failed_precondition");
  EXPECT_NE(snap.body.find("migration agent"), std::string::npos) << snap.body;
  auto migrate = route(put("/api/v1/vm.migrate", R"({"destination": "unix:/d.sock"})"), c);
  EXPECT_EQ(migrate.status, 409);
  EXPECT_NE(migrate.body.find("MigTD"), std::string::npos) << migrate.body;
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

// The real ApiServer in this process, its thread under the API seccomp filter (a system call
// the filter lacks would kill the test binary): several clients at once, the size limits and a
// byte that is not UTF-8 with the API's JSON error bodies, refusals counted as api_errors, and
// the socket file removed.
TEST(ApiServerTest, ServesConcurrentClientsUnderItsSeccompFilter) {
  const std::filesystem::path sock = std::filesystem::temp_directory_path() /
                                     ("cloister-api-unit-" + std::to_string(::getpid()) + ".sock");
  FakeController c;
  Logger log(LogFormat::kJson, LogLevel::kError);
  auto server = ApiServer::start(sock.string(), c, log, seccomp_available());
  ASSERT_TRUE(server) << server.error().message();

  std::vector<Fd> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(connect_unix(sock));
  Fd partial = connect_unix(sock);
  ASSERT_TRUE(send_all(partial, "GET /api/v1/vm.info HTTP/1.1\r\nHost:"));

  Reply info = round_trip(sock, get_request("/api/v1/vm.info"));
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(json::parse(info.body)["state"], "running");
  EXPECT_NE(info.headers.find("Server: cloister-vmm\r\n"), std::string::npos);

  Reply headers =
      round_trip(sock, "GET /api/v1/vm.info HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_EQ(headers.status, 431);
  const std::string too_long = json::parse(headers.body)["error"];
  EXPECT_TRUE(too_long.starts_with("HTTP header section: ")) << too_long;
  EXPECT_TRUE(too_long.ends_with(" bytes exceeds the 8192-byte limit")) << too_long;
  Reply body =
      round_trip(sock, "PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n");
  EXPECT_EQ(body.status, 413);
  EXPECT_EQ(json::parse(body.body)["error"],
            "HTTP body: Content-Length 65537 exceeds the 65536-byte limit");
  EXPECT_FALSE(c.paused);
  // A byte that is not UTF-8 in the request line: quoted in the JSON error (encoding it used to
  // throw on the server thread and end the VMM, guest and all).
  Reply bad_byte = round_trip(sock, "GET / HTTP/1.\xc3\r\n\r\n");
  EXPECT_EQ(bad_byte.status, 400);
  EXPECT_EQ(json::parse(bad_byte.body)["error"],
            "HTTP request line: expected HTTP/1.1 or HTTP/1.0, found \"HTTP/1.\\xc3\"");

  EXPECT_TRUE(server_holds(partial));
  for (const Fd& fd : idle) EXPECT_TRUE(server_holds(fd));
  EXPECT_EQ(c.m.api_requests.load(), 1u);
  EXPECT_EQ(c.m.api_errors.load(), 3u);
  server->reset();
  EXPECT_TRUE(server_released(partial));
  EXPECT_FALSE(std::filesystem::exists(sock));
}

http::Response put_limits(FakeController& controller, const std::string& body) {
  http::Request r;
  r.method = "PUT";
  r.path = "/api/v1/vm.net.rate_limiters";
  r.body = body;
  return route(r, controller);
}

TEST(NetApiTest, RateLimitersAreReadAndReplaced) {
  FakeController controller;
  http::Request get;
  get.method = "GET";
  get.path = "/api/v1/vm.nets";
  auto listed = route(get, controller);
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(json::parse(listed.body), json::array({{{"tap", "tap0"}}}));

  auto ok = put_limits(controller, R"({"tap": "tap0", "tx_rate_limiter": {"ops": {"size": 10, )"
                                   R"("refill_time_ms": 1000}}})");
  EXPECT_EQ(ok.status, 204) << ok.body;
  EXPECT_FALSE(controller.rx);
  ASSERT_TRUE(controller.tx);
  EXPECT_EQ(controller.tx->ops, (TokenBucketConfig{10, 0, 1000}));

  EXPECT_EQ(put_limits(controller, R"({"tap": "tap9"})").status, 404);
  auto bad = put_limits(controller, R"({"tap": "tap0", "rx_rate_limiter": {"ops": {"size": 1}}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("rx_rate_limiter.ops.refill_time_ms"), std::string::npos) << bad.body;
  EXPECT_EQ(put_limits(controller, R"({"tap": "tap0", "speed": 1})").status, 400);
  EXPECT_EQ(put_limits(controller, R"({"tap": "tap0", "tap": "tap1"})").status, 400);
  EXPECT_EQ(put_limits(controller, "[]").status, 400);
}

}  // namespace
}  // namespace cloister::vmm
