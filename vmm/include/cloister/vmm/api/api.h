// The control API (HTTP/1.1 + JSON on a UNIX socket; OpenAPI in docs/vmm-api.yaml):
//   GET /api/v1/vmm.ping          version
//   GET /api/v1/vm.info           state, config, measurement (null for tee=none), stop reason
//   GET /api/v1/vm.measurement    the launch measurement and what it covers
//   PUT /api/v1/vm.pause | vm.resume | vm.shutdown
//   PUT /api/v1/vm.snapshot       {"dir": PATH}: pause, write state.json and memory.bin (204;
//                                 409 for confidential guests)
//   PUT /api/v1/vm.migrate        {"destination": "unix:PATH" or "tcp:HOST:PORT"}: live
//                                 migration to a `cloister-vmm receive` (204, then this VMM
//                                 stops; 409 for confidential guests; 503 when the
//                                 destination fails, the VM running on here)
//   GET /api/v1/metrics           counters as JSON, or ?format=prometheus
// route() is pure request -> response over an ApiController, so it is unit-tested without a
// VM; ApiServer serves it with the shared HTTP server (cloister/common/http_server.h) and the
// limits below.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cloister/common/http.h"
#include "cloister/common/http_server.h"
#include "cloister/common/result.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/metrics.h"

namespace cloister::vmm {

class Vmm;

class ApiController {
 public:
  virtual ~ApiController() = default;
  virtual nlohmann::json info() = 0;
  virtual Status pause() = 0;
  virtual Status resume() = 0;
  virtual void shutdown() = 0;  // asynchronous: the VM stops soon after
  virtual Metrics& metrics() = 0;
  // The virtio-net devices (Vmm::nets()), and replacing a net's rate limiters (false: no net
  // on that TAP).
  virtual nlohmann::json nets() = 0;
  virtual bool set_net_rate_limiters(const std::string& tap,
                                     const std::optional<RateLimiterConfig>& rx,
                                     const std::optional<RateLimiterConfig>& tx) = 0;
  // Vmm::snapshot() and Vmm::migrate(); the error's code chooses the HTTP status.
  virtual Status snapshot(const std::string& dir) = 0;
  virtual Status migrate(const std::string& destination) = 0;
};

http::Response route(const http::Request& request, ApiController& controller);

// The control API's limits (docs/operator.md, "Control API"). Requests: 8 KiB of headers
// (431 beyond), 64 KiB of body (413 beyond).
inline constexpr std::chrono::milliseconds kApiIdleTimeout{30'000};
inline constexpr std::chrono::milliseconds kApiRequestTimeout{10'000};
inline constexpr std::chrono::milliseconds kApiResponseTimeout{10'000};
inline constexpr std::size_t kApiMaxConnections = 64;

// Serves the API on a UNIX socket from one thread, which has installed the API seccomp filter
// (when `seccomp` is set) by the time start() returns, concurrently for up to kApiMaxConnections
// clients. The thread also runs vm.migrate: its filter permits `migration_ioctls`
// (Vmm::migration_ioctls) and sockets of the migration transports' families. A stale socket
// file at `path` is replaced; a live one is an error. Refusals count as api_errors and are
// logged.
class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> start(const std::string& path,
                                                  ApiController& controller, Logger& log,
                                                  bool seccomp,
                                                  std::vector<Ioctl> migration_ioctls = {});
  // Stops serving without waiting for any client, then removes the socket file.
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

 private:
  ApiServer(std::string path, std::unique_ptr<http::Server> server);

  std::string path_;
  std::unique_ptr<http::Server> server_;
};

// The ApiController of a running Vmm.
class VmmApiController final : public ApiController {
 public:
  explicit VmmApiController(Vmm& vmm) : vmm_(vmm) {}
  nlohmann::json info() override;
  Status pause() override;
  Status resume() override;
  void shutdown() override;
  Metrics& metrics() override;
  nlohmann::json nets() override;
  bool set_net_rate_limiters(const std::string& tap, const std::optional<RateLimiterConfig>& rx,
                             const std::optional<RateLimiterConfig>& tx) override;
  Status snapshot(const std::string& dir) override;
  Status migrate(const std::string& destination) override;

 private:
  Vmm& vmm_;
};

}  // namespace cloister::vmm
