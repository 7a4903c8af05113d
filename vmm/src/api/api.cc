#include "cloister/vmm/api/api.h"

#include <sys/socket.h>
#include <unistd.h>

#include "cloister/common/json.h"
#include "cloister/common/socket.h"
#include "cloister/vmm/migration/transport.h"
#include "cloister/vmm/seccomp/seccomp.h"
#include "cloister/vmm/version.h"
#include "cloister/vmm/vmm.h"

namespace cloister::vmm {
namespace {

http::Response json_response(int status, const nlohmann::json& body) {
  return {status, "application/json", dump_json(body) + "\n", ""};
}

http::Response error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

// The status of the error's code (http::status_for); the body carries the code too.
http::Response error_response_for(const Error& error) {
  return json_response(http::status_for(error.code()),
                       {{"error", error.message()}, {"code", to_string(error.code())}});
}

http::Response no_content() {
  return {204, "application/json", "", ""};
}

// Refusals are client mistakes or overload, worth a warning only when the VMM turns clients
// away; the rest is debug detail.
LogLevel event_level(const http::ServerEvent& event) {
  using Kind = http::ServerEvent::Kind;
  if (event.kind == Kind::kHandlerFailed || event.kind == Kind::kFailed) return LogLevel::kError;
  if (event.kind == Kind::kAcceptFailed || event.status == 503) return LogLevel::kWarn;
  return LogLevel::kDebug;
}

// PUT vm.net.rate_limiters: {"tap": NAME, "rx_rate_limiter": {...}, "tx_rate_limiter": {...}},
// either limiter optional (kept when absent).
http::Response set_rate_limiters(const std::string& body, ApiController& controller) {
  auto doc = parse_json_strict(body, "vm.net.rate_limiters");
  if (!doc) return error_response(400, doc.error().message());
  if (!doc->is_object() || !doc->contains("tap") || !(*doc)["tap"].is_string())
    return error_response(400,
                          "vm.net.rate_limiters: expected {\"tap\": NAME, "
                          "\"rx_rate_limiter\": {...}, \"tx_rate_limiter\": {...}}");
  std::optional<RateLimiterConfig> rx, tx;
  for (const auto& [key, value] : doc->items()) {
    if (key == "tap") continue;
    if (key != "rx_rate_limiter" && key != "tx_rate_limiter")
      return error_response(400, "vm.net.rate_limiters: unknown key \"" + key +
                                     "\" (known: tap, rx_rate_limiter, tx_rate_limiter)");
    auto limiter = parse_rate_limiter(value, key);
    if (!limiter) return error_response(400, limiter.error().message());
    (key == "rx_rate_limiter" ? rx : tx) = *limiter;
  }
  const std::string tap = (*doc)["tap"].get<std::string>();
  if (!controller.set_net_rate_limiters(tap, rx, tx))
    return error_response(404, "vm.net.rate_limiters: no virtio-net on TAP \"" + tap + "\"");
  return no_content();
}

// PUT vm.snapshot: {"dir": PATH}, an absolute path whose parent exists.
http::Response snapshot(const std::string& body, ApiController& controller) {
  auto doc = parse_json_strict(body, "vm.snapshot");
  if (!doc) return error_response(400, doc.error().message());
  if (!doc->is_object() || doc->size() != 1 || !doc->contains("dir") || !(*doc)["dir"].is_string())
    return error_response(400, "vm.snapshot: expected {\"dir\": PATH}");
  const std::string dir = (*doc)["dir"].get<std::string>();
  if (dir.empty() || dir.front() != '/')
    return error_response(400,
                          "vm.snapshot: dir: expected an absolute path, found \"" + dir + "\"");
  auto st = controller.snapshot(dir);
  return st ? no_content() : error_response_for(st.error());
}

// PUT vm.migrate: {"destination": "unix:PATH" | "tcp:HOST:PORT"}, where a `cloister-vmm receive`
// listens.
http::Response migrate(const std::string& body, ApiController& controller) {
  auto doc = parse_json_strict(body, "vm.migrate");
  if (!doc) return error_response(400, doc.error().message());
  if (!doc->is_object() || doc->size() != 1 || !doc->contains("destination") ||
      !(*doc)["destination"].is_string())
    return error_response(
        400, "vm.migrate: expected {\"destination\": \"unix:PATH\" or \"tcp:HOST:PORT\"}");
  auto st = controller.migrate((*doc)["destination"].get<std::string>());
  return st ? no_content() : error_response_for(st.error());
}

}  // namespace

http::Response route(const http::Request& req, ApiController& controller) {
  controller.metrics().api_requests.fetch_add(1, std::memory_order_relaxed);
  struct Route {
    const char* path;
    const char* method;
  };
  static constexpr Route routes[] = {
      {"/api/v1/vmm.ping", "GET"},
      {"/api/v1/vm.info", "GET"},
      {"/api/v1/vm.measurement", "GET"},
      {"/api/v1/metrics", "GET"},
      {"/api/v1/vm.pause", "PUT"},
      {"/api/v1/vm.resume", "PUT"},
      {"/api/v1/vm.shutdown", "PUT"},
      {"/api/v1/vm.nets", "GET"},
      {"/api/v1/vm.net.rate_limiters", "PUT"},
      {"/api/v1/vm.snapshot", "PUT"},
      {"/api/v1/vm.migrate", "PUT"},
  };
  const Route* found = nullptr;
  for (const auto& r : routes)
    if (req.path == r.path) found = &r;
  http::Response response;
  if (!found) {
    response = error_response(404, "no such endpoint: " + req.path);
  } else if (req.method != found->method) {
    response = error_response(
        405, req.method + " is not allowed on " + req.path + "; use " + found->method);
    response.extra_headers = std::string("Allow: ") + found->method + "\r\n";
  } else if (req.path == "/api/v1/vmm.ping") {
    response = json_response(200, {{"version", kVmmVersion}});
  } else if (req.path == "/api/v1/vm.info") {
    response = json_response(200, controller.info());
  } else if (req.path == "/api/v1/vm.measurement") {
    auto info = controller.info();
    response = json_response(200, {{"tee", info["tee"]},
                                   {"measurement", info["measurement"]},
                                   {"note", info["measurement_note"]}});
  } else if (req.path == "/api/v1/metrics") {
    if (req.query == "format=prometheus")
      response = {200, "text/plain; version=0.0.4", controller.metrics().to_prometheus(), ""};
    else if (req.query.empty() || req.query == "format=json")
      response = json_response(200, controller.metrics().to_json());
    else
      response = error_response(400, "metrics: unknown query \"" + req.query +
                                         "\" (use format=json or format=prometheus)");
  } else if (req.path == "/api/v1/vm.pause") {
    auto st = controller.pause();
    response = st ? no_content() : error_response(409, st.error().message());
  } else if (req.path == "/api/v1/vm.resume") {
    auto st = controller.resume();
    response = st ? no_content() : error_response(409, st.error().message());
  } else if (req.path == "/api/v1/vm.nets") {
    response = json_response(200, controller.nets());
  } else if (req.path == "/api/v1/vm.net.rate_limiters") {
    response = set_rate_limiters(req.body, controller);
  } else if (req.path == "/api/v1/vm.snapshot") {
    response = snapshot(req.body, controller);
  } else if (req.path == "/api/v1/vm.migrate") {
    response = migrate(req.body, controller);
  } else {
    controller.shutdown();
    response = no_content();
  }
  if (response.status >= 400)
    controller.metrics().api_errors.fetch_add(1, std::memory_order_relaxed);
  return response;
}

Result<std::unique_ptr<ApiServer>> ApiServer::start(const std::string& path,
                                                    ApiController& controller, Logger& log,
                                                    bool seccomp,
                                                    std::vector<Ioctl> migration_ioctls) {
  auto listener = listen_unix(path);
  if (!listener) return listener.error().with_context("control API");
  http::ServerOptions options;
  options.name = "cloister-vmm";
  options.idle_timeout = kApiIdleTimeout;
  options.request_timeout = kApiRequestTimeout;
  options.response_timeout = kApiResponseTimeout;
  options.max_connections = kApiMaxConnections;
  options.error_response = error_response;
  if (seccomp && seccomp_available())
    options.thread_init = [ioctls = std::move(migration_ioctls)] {
      SeccompScope scope;
      scope.ioctls = ioctls;                                // vm.migrate's dirty-page log
      scope.socket_families = migration_socket_families();  // vm.migrate's destination
      return install_seccomp(ThreadClass::kApi, scope);
    };
  options.on_event = [&controller, &log](const http::ServerEvent& event) {
    if (event.status >= 400)
      controller.metrics().api_errors.fetch_add(1, std::memory_order_relaxed);
    nlohmann::json fields = nlohmann::json::object();
    if (event.status) fields["status"] = event.status;
    log.log(event_level(event), "api.connection", event.message, fields);
  };
  auto server = http::Server::start(
      std::move(*listener),
      [&controller, &log](const http::Request& request) {
        http::Response response = route(request, controller);
        log.debug("api.request", request.method + " " + request.path,
                  {{"status", response.status}});
        return response;
      },
      std::move(options));
  if (!server) {
    ::unlink(path.c_str());
    return server.error().with_context("control API");
  }
  log.info(
      "api.listening", "control API ready",
      {{"socket", path}, {"max_connections", kApiMaxConnections}, {"backlog", kListenBacklog}});
  return std::unique_ptr<ApiServer>(new ApiServer(path, std::move(*server)));
}

ApiServer::ApiServer(std::string path, std::unique_ptr<http::Server> server)
    : path_(std::move(path)), server_(std::move(server)) {}

ApiServer::~ApiServer() {
  server_->stop();
  ::unlink(path_.c_str());
}

nlohmann::json VmmApiController::info() {
  return vmm_.info();
}
Status VmmApiController::pause() {
  return vmm_.pause();
}
Status VmmApiController::resume() {
  return vmm_.resume();
}
void VmmApiController::shutdown() {
  vmm_.request_stop({StopKind::kRequested, 0, "shutdown requested through the API"});
}
Metrics& VmmApiController::metrics() {
  return vmm_.metrics();
}
nlohmann::json VmmApiController::nets() {
  return vmm_.nets();
}
Status VmmApiController::snapshot(const std::string& dir) {
  return vmm_.snapshot(dir);
}
Status VmmApiController::migrate(const std::string& destination) {
  return vmm_.migrate(destination);
}
bool VmmApiController::set_net_rate_limiters(const std::string& tap,
                                             const std::optional<RateLimiterConfig>& rx,
                                             const std::optional<RateLimiterConfig>& tx) {
  return vmm_.set_net_rate_limiters(tap, rx, tx);
}

}  // namespace cloister::vmm
